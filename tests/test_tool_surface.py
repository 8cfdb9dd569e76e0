"""What a host model meets: argument errors in one clear line, from_run without repeating the
question, compare_drafts with its own deadline, and the server still serving after each error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio


def _server(upstream: Upstream, folder: Path, **kw: Any) -> Any:
    upstream.script("alpha", text="Paris is the capital of France.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")
    return create_server(write_registry(folder, lab=lab_toml(upstream.url, ["alpha", "beta"], **kw)))


@pytest.mark.parametrize(("args", "expected"), [
    ({"question": "Q?", "deadline_s": -1}, "invalid arguments to fused_answer: deadline_s: must be greater than 0"),
    ({"question": "Q?", "deadline_s": "soon"}, "deadline_s: must be a valid number"),
    ({"question": "Q?", "drafters": "lab:alpha"}, "drafters: must be a valid list"),
    ({"question": "Q?", "max_cost_usd": 0, "include_drafts": "maybe"}, "include_drafts: must be a valid boolean"),
    ({"question": ""}, "question: must have at least 1 character"),
    ({}, "question is required (or from_run"),
])
async def test_argument_errors_are_one_line(upstream: Upstream, ensemble_dir: Path, args, expected) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        result = await client.call_tool("fused_answer", {"ensemble": "lab", **args})
        assert result.is_error
        text = result.content[0].text
        assert expected in text and "\n" not in text and "pydantic" not in text and "soon" not in text
        again = await client.call_tool("fused_answer", {"ensemble": "lab", "question": "Capital?"})
        assert not again.is_error
    if "max_cost_usd" in args:
        assert "max_cost_usd: must be greater than 0" in text  # every problem, in the same line


async def test_from_run_needs_no_question(upstream: Upstream, ensemble_dir: Path) -> None:
    async with Client(_server(upstream, ensemble_dir)) as client:
        cmp = await client.call_tool("compare_drafts", {"question": "Capital of France?", "ensemble": "lab"})
        run_id = cmp.structured_content["run_id"]
        fused = await client.call_tool("fused_answer", {"from_run": run_id})
        same = await client.call_tool("fused_answer", {"from_run": run_id, "question": " Capital of France? "})
        other = await client.call_tool("fused_answer", {"from_run": run_id, "question": "Capital of Spain?"})
        redraft = await client.call_tool("fused_answer", {"from_run": run_id, "drafters": ["lab:alpha"]})
    assert not fused.is_error and fused.structured_content["answer"] == "Paris."
    assert not same.is_error
    assert other.is_error and "different question" in other.content[0].text and "omit question" in other.content[0].text
    assert redraft.is_error and "omit drafters and reviewer" in redraft.content[0].text
    assert len(upstream.calls("alpha")) == 1  # drafted once


async def test_compare_drafts_keeps_its_deadline(upstream: Upstream, ensemble_dir: Path) -> None:
    server = _server(upstream, ensemble_dir, deadline_s=60, min_drafts=1)
    upstream.script("beta", hang=True)
    async with Client(server) as client:
        started = anyio.current_time()
        with anyio.fail_after(30):
            result = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab",
                                                               "deadline_s": 2})
        assert anyio.current_time() - started < 2 + 1.5
    status = {d["model"]: d["status"] for d in result.structured_content["drafts"]}
    assert status == {"lab:alpha": "ok", "lab:beta": "timeout"}
