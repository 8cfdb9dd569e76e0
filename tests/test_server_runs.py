"""Runs that outlive a tool call: every call returns within the tool-time limit, get_run yields the
synthesized answer, run:// shows a running run, runs in flight are bounded, and a run handed off keeps
going when its client goes away."""

import json
import os
import sys
from typing import Any

import anyio
import pytest
from mcp import Client

from fusion_mcp.server.app import create_server
from tests.conftest import LAB_KEY, lab_toml, review_json, write_registry
from tests.services import Service, free_port
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio


def slow_models(upstream: Upstream, seconds: float = 1.2) -> None:
    """Drafts, review and synthesis each take `seconds`: a run of about 3 × that."""
    pace: dict[str, Any] = dict(ttft=seconds * 0.5, tokens_per_s=40 / seconds, output_tokens=20)
    upstream.script("alpha", text="Answer: Paris.", **pace)
    upstream.script("beta", text="Answer: Lyon.", **pace)
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}), **pace)
    upstream.script("fuser", text="Paris is the capital.", **pace)


async def test_a_run_longer_than_the_tool_limit_is_polled_to_its_synthesis(upstream, ensemble_dir):
    slow_models(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"], deadline_s=30)),
                           tool_timeout_s=1.0)
    async with Client(server) as client:
        started = anyio.current_time()
        first = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
        assert anyio.current_time() - started < 1.0 + 2.0  # back within the limit, not after the ~3.6 s run
        out = first.structured_content
        assert not first.is_error and out["status"] == "running" and out["answer"] == ""
        assert "get_run" in out["running"]["next"] and out["running"]["time_left_s"] > 20
        run_id = out["run_id"]
        shown = json.loads((await client.read_resource(f"run://{run_id}")).contents[0].text)
        assert shown["status"] == "running" and shown["ensemble"] == "lab"
        polls = 0
        while out["status"] == "running":
            polls += 1
            assert polls < 20
            result = await client.call_tool("get_run", {"run_id": run_id, "wait_s": 60})
            assert not result.is_error, result.content
            out = result.structured_content
        assert polls >= 1
        assert out["status"] == "done" and out["answer_source"] == "synthesis"
        assert out["answer"] == "Paris is the capital." and out["run_id"] == run_id
        full = json.loads((await client.read_resource(f"run://{run_id}")).contents[0].text)
        assert full["answer"] == "Paris is the capital."
    # nothing ran twice: one call per model
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "judge", "fuser")] == [1, 1, 1, 1]


async def test_compare_drafts_is_polled_in_its_own_shape(upstream, ensemble_dir):
    slow_models(upstream, seconds=0.8)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"], deadline_s=30)),
                           tool_timeout_s=0.5)
    async with Client(server) as client:
        out = (await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})).structured_content
        assert out["status"] == "running"
        while out["status"] == "running":
            out = (await client.call_tool("get_run", {"run_id": out["run_id"]})).structured_content
        assert {d["model"] for d in out["drafts"]} == {"lab:alpha", "lab:beta"} and "best" in out
        assert "answer" not in out  # a comparison, not a fused answer


async def test_runs_in_flight_are_bounded_and_unknown_runs_are_clear_errors(upstream, ensemble_dir):
    slow_models(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"], deadline_s=30)),
                           tool_timeout_s=0.3, max_running=1)
    async with Client(server) as client:
        first = (await client.call_tool("fused_answer", {"question": "Q1?", "ensemble": "lab"})).structured_content
        assert first["status"] == "running"
        second = await client.call_tool("fused_answer", {"question": "Q2?", "ensemble": "lab"})
        assert second.is_error and "1 run(s) are already in flight" in second.content[0].text
        missing = await client.call_tool("get_run", {"run_id": "nope"})
        assert missing.is_error and "unknown run id 'nope'" in missing.content[0].text
        while first["status"] == "running":
            first = (await client.call_tool("get_run", {"run_id": first["run_id"]})).structured_content
        third = await client.call_tool("fused_answer", {"question": "Q3?", "ensemble": "lab"})
        assert not third.is_error  # a slot is free again
    assert len(upstream.calls("alpha")) == 2  # Q2 never started


async def test_a_handed_off_run_survives_its_client_over_streamable_http(upstream, ensemble_dir, tmp_path):
    slow_models(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], deadline_s=30))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LAB_KEY": LAB_KEY,
           "FUSION_MCP_ENSEMBLES": str(ensemble_dir), "FUSION_MCP_CACHE": str(tmp_path / "c.sqlite3"),
           "FUSION_MCP_TOOL_TIMEOUT": "1"}
    port = free_port()
    server = Service([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                      "--port", str(port)], port, "fusion-mcp serve", env)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url) as client:  # starts the run, then goes away
            out = (await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})).structured_content
        assert out["status"] == "running"
        async with Client(url) as client:  # another client picks it up
            while out["status"] == "running":
                out = (await client.call_tool("get_run", {"run_id": out["run_id"], "wait_s": 30})).structured_content
        assert out["answer_source"] == "synthesis" and out["answer"] == "Paris is the capital."
    finally:
        server.stop()
