"""`serve --confirm-over USD`: a client with elicitation is asked, with the estimate, before a run that
could cost more; a decline means no model is called; an accept runs it; a cheap run, or a client
without elicitation, is not asked."""

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitResult

from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
MODELS = ["alpha", "beta", "judge", "fuser"]


@pytest.fixture
def server(upstream: Upstream, ensemble_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    prices = tmp_path / "prices.toml"
    prices.write_text("".join(f'["lab:{m}"]\ninput = 1.0\noutput = 2.0\n' for m in MODELS))
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    monkeypatch.setenv("FUSION_MCP_CONFIRM_OVER", "0.001")  # a run here is estimated at about $0.01
    upstream.script("alpha", text="Paris is the capital of France.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")
    return create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))


def answering(action: Any, proceed: bool = True) -> tuple[list[str], Any]:
    asked: list[str] = []

    async def callback(_ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"proceed": proceed} if action == "accept" else None)

    return asked, callback


@pytest.mark.parametrize("action,proceed,mode", [("decline", True, "legacy"), ("cancel", True, "legacy"),
                                                ("accept", False, "legacy"), ("decline", True, "auto")])
async def test_a_user_who_says_no_spends_nothing(server: Any, upstream: Upstream, action: str, proceed: bool,
                                                 mode: str) -> None:
    asked, callback = answering(action, proceed)
    async with Client(server, mode=mode, elicitation_callback=callback) as client:
        out = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    assert out.is_error and "declined" in out.content[0].text and "no model was called" in out.content[0].text
    assert len(asked) == 1 and "up to $0.0" in asked[0] and "over the $0.001" in asked[0]
    assert "draft lab:alpha $" in asked[0] and "synthesis lab:fuser $" in asked[0]
    assert upstream.calls() == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # auto: 2026-07-28, asked through InputRequiredResult
async def test_a_user_who_accepts_gets_the_run_and_a_host_without_elicitation_is_not_asked(
        server: Any, upstream: Upstream, mode: str) -> None:
    asked, callback = answering("accept")
    async with Client(server, mode=mode, elicitation_callback=callback) as client:
        out = await client.call_tool("compare_drafts", {"question": "Capital of France?", "ensemble": "lab"})
    assert not out.is_error and len(asked) == 1 and "compare_drafts" in asked[0] and "synthesis" not in asked[0]
    assert {d["model"] for d in out.structured_content["drafts"]} == {"lab:alpha", "lab:beta"}
    async with Client(server, mode=mode) as client:  # no elicitation callback: no capability
        plain = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    assert not plain.is_error and plain.structured_content["answer"] == "Paris." and len(asked) == 1
