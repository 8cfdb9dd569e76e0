"""The tool loop inside a run: the tool-call limit and the final answer, tool failures as results, the
reviewer checking a contradiction against a source, citations the drafts never read, and the estimate."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.fusion.estimate import estimate_run
from tests.conftest import LAB_KEY, analysis_review, drafts_in_prompt, env_pricing, scoring_reviewer, write_registry
from tests.test_web import researcher, researcher_answer, web_toml
from tests.upstream import Upstream, tool_results
from tests.web_server import Trap, Web


@pytest.fixture
def web() -> Iterator[Web]:
    trap = Trap()
    w = Web(trap.port).start()
    yield w
    w.close()
    trap.close()


def told_to_stop(body: dict[str, Any]) -> bool:
    return body.get("tool_choice") in ("none", {"type": "none"})


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_tool_call_limit_then_final_answer(upstream: Upstream, web: Web, ensemble_dir: Path, kind: str) -> None:
    def greedy(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        if told_to_stop(body):
            return None
        n = len(tool_results(body))
        return [{"name": "web_search", "arguments": {"query": f"q{n + i}"}} for i in range(3 if n else 1)]

    upstream.script("greedy", tool_calls=greedy, text=lambda b: f"done after {len(tool_results(b))} results")
    upstream.script("plain", text="A plain answer.")
    upstream.script("judge", scoring_reviewer({}))
    upstream.script("fuser", text="Fused.")
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, [
        {"model": "greedy", "tools": ["web_search"]}, "plain"], kind=kind, extra="max_tool_calls = 2\n"))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
        learned = engine.call.paces.tool_seconds("lab:greedy", "draft")
    greedy_draft = next(d for d in result.drafts if d.model == "lab:greedy")
    assert greedy_draft.status == "ok" and greedy_draft.tool_calls == 2
    assert web.queries == ["q0", "q1"]  # the third call of the second turn was over the limit: not run
    calls = upstream.calls("greedy")
    assert len(calls) == 3 and not told_to_stop(calls[1].body) and told_to_stop(calls[2].body)
    assert "limit of 2 tool calls" in tool_results(calls[2].body)[-1]
    assert greedy_draft.text == "done after 4 results"
    # usage is summed over the three turns, and the loop's time is learned for the time plan
    assert greedy_draft.input_tokens == 33 and learned is not None
    # the plain drafter was offered no tools
    assert all("tools" not in c.body for c in upstream.calls("plain"))


@pytest.mark.anyio
async def test_a_model_that_never_stops_calling_tools_fails_its_draft_only(
        upstream: Upstream, web: Web, ensemble_dir: Path) -> None:
    upstream.script("stubborn", tool_calls=lambda b: [{"name": "web_search", "arguments": {"query": "again"}}])
    upstream.script("plain", text="A plain answer.")
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, [
        {"model": "stubborn", "tools": ["web_search"]}, "plain"], extra="max_tool_calls = 1\n"))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    stubborn = next(d for d in result.drafts if d.model == "lab:stubborn")
    assert stubborn.status == "bad_response" and "asked for tools after its 1 tool calls" in (stubborn.error or "")
    assert result.answer == "A plain answer."


@pytest.mark.anyio
async def test_tool_failures_reach_the_model_as_results(upstream: Upstream, web: Web, ensemble_dir: Path) -> None:
    def asks(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        if tool_results(body):
            return None
        return [{"name": "web_search", "arguments": {"query": "x"}}, {"name": "web_fetch", "arguments": {"url": 42}},
                {"name": "web_fetch", "arguments": {"url": "http://127.0.0.1:1/"}},
                {"name": "delete_files", "arguments": {}}]

    upstream.script("alpha", tool_calls=asks, text=lambda b: " | ".join(tool_results(b)))
    upstream.script("beta", text="Other.")
    toml = web_toml(upstream, web, [{"model": "alpha", "tools": ["web_search", "web_fetch"]}, "beta"])
    toml = toml.replace(f'search_url = "{web.url}"', 'search_url = "http://127.0.0.1:9"')  # nothing listens there
    reg = write_registry(ensemble_dir, lab=toml)
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    alpha = next(d for d in result.drafts if d.model == "lab:alpha")
    assert alpha.status == "ok"
    results = (alpha.text or "").split(" | ")
    assert results[0] == "error: searxng search unreachable: ConnectError"
    assert results[1].startswith("error: web_fetch refused 42: only http and https")
    assert "loopback" in results[2]
    assert results[3] == "error: there is no tool 'delete_files'; the tools are web_search, web_fetch"
    assert len(alpha.tool_log) == 4


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_tool_name_holding_a_key_reaches_no_result(upstream: Upstream, web: Web, ensemble_dir: Path,
                                                           kind: str) -> None:
    """A tool call's name is model text: the tool's error and the run's tool log show it redacted and cut."""
    def asks(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        return None if tool_results(body) else [{"name": f"send_{LAB_KEY}_" + "x" * 5000, "arguments": {}}]

    upstream.script("alpha", tool_calls=asks, text=lambda b: " | ".join(tool_results(b)))
    upstream.script("beta", text="Other.")
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, [
        {"model": "alpha", "tools": ["web_search"]}, "beta"], kind=kind))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    alpha = next(d for d in result.drafts if d.model == "lab:alpha")
    assert alpha.status == "ok" and alpha.text and alpha.text.startswith("error: there is no tool 'send_[redacted]")
    shown = (alpha.text or "") + "".join(alpha.tool_log)
    assert LAB_KEY not in shown and LAB_KEY not in result.model_dump_json() and len(shown) < 300


@pytest.mark.anyio
async def test_reviewer_checks_a_contradiction_against_the_source(upstream: Upstream, web: Web, ensemble_dir: Path) -> None:
    page = f"{web.url}/quillon"
    upstream.script("alpha", tool_calls=researcher, text=researcher_answer)
    upstream.script("beta", text="The Quillon footbridge opened in 1920.")

    def fetches(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        prompt = "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
        url = re.search(r"Sources this draft read: [^)]*?(http\S+/quillon)", prompt)
        return None if tool_results(body) else [{"name": "web_fetch", "arguments": {"url": url.group(1) if url else ""}}]

    def judges(body: dict[str, Any]) -> str:
        prompt = "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user" and isinstance(m.get("content"), str))
        drafts = drafts_in_prompt(prompt)
        right = next(k for k, v in drafts.items() if "1911" in v)
        wrong = next(k for k in drafts if k != right)
        found = "opened on 14 March 1911" in tool_results(body)[0]
        return analysis_review({right: 9, wrong: 3}, contradictions=[{
            "topic": "opening year", "stances": [{"label": right, "stance": "1911"}, {"label": wrong, "stance": "1920"}],
            "checked_source": page, "finding": "the page says 14 March 1911" if found else "unreadable"}])

    upstream.script("judge", tool_calls=fetches, text=judges)
    upstream.script("fuser", text="It opened in 1911 [1]. See also [4] and https://elsewhere.example/page.")
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, [
        {"model": "alpha", "tools": ["web_search", "web_fetch"]}, "beta"]).replace(
        '[reviewer]\nmodel = "lab:judge"', '[reviewer]\nmodel = "lab:judge"\ntools = ["web_fetch"]'))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("When did it open?", ensemble="lab")
    assert result.review.status == "ok" and result.review.tool_calls == 1
    (c,) = result.analysis.contradictions
    assert c.checked_source == page and c.finding == "the page says 14 March 1911"
    assert f"(checked against {page}: the page says 14 March 1911)" in upstream.calls("fuser")[0].user_text()
    # what the synthesis cites that no draft read is flagged
    assert result.citation_flags == ["the answer cites [4], but the drafts read only 2 source(s)",
                                     "the answer cites https://elsewhere.example/page, which no draft searched or read"]
    assert [s.url for s in result.sources] == [page, f"{web.url}/other"]


def test_estimate_counts_tool_turns_and_searches(upstream: Upstream, web: Web, ensemble_dir: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("".join(f'["lab:{m}"]\ninput = 1.0\noutput = 2.0\n' for m in ("alpha", "beta", "judge", "fuser")))
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    plain = write_registry(ensemble_dir, plain=web_toml(upstream, web, ["alpha", "beta"])).get("plain")
    tooled = write_registry(ensemble_dir, tooled=web_toml(upstream, web, [
        {"model": "alpha", "tools": ["web_search", "web_fetch"]}, "beta"],
        extra="max_tool_calls = 2\nsearch_price_usd = 0.5\n")).get("tooled")
    base = {m: usd for stage, m, usd in estimate_run(plain, "Q?", None, env_pricing()).calls if stage == "draft"}
    more = {m: usd for stage, m, usd in estimate_run(tooled, "Q?", None, env_pricing()).calls if stage == "draft"}
    assert more["lab:beta"] == base["lab:beta"]
    assert more["lab:alpha"] > 3 * base["lab:alpha"] + 2 * 0.5  # three turns, each prompt longer, and two searches


@pytest.mark.anyio
async def test_sources_shown_by_every_surface(upstream: Upstream, web: Web, ensemble_dir: Path) -> None:
    """compare_drafts, fused_answer, get_run and run:// carry the sources; `ask` prints them."""
    import json
    import os
    import subprocess
    import sys

    from mcp import Client

    from fusion_mcp.server.app import create_server
    from tests.test_web import fuser_answer

    upstream.script("alpha", tool_calls=researcher, text=researcher_answer)
    upstream.script("beta", text="No idea.")
    upstream.script("judge", scoring_reviewer({}))
    upstream.script("fuser", text=fuser_answer)
    toml = web_toml(upstream, web, [{"model": "alpha", "tools": ["web_search", "web_fetch"]}, "beta"])
    page = f"{web.url}/quillon"
    async with Client(create_server(write_registry(ensemble_dir, lab=toml))) as client:
        compared = (await client.call_tool("compare_drafts", {"question": "When?", "ensemble": "lab"})).structured_content
        fused = (await client.call_tool("fused_answer", {"question": "When?", "ensemble": "lab"})).structured_content
        polled = (await client.call_tool("get_run", {"run_id": fused["run_id"]})).structured_content
        run = json.loads((await client.read_resource(f"run://{fused['run_id']}")).contents[0].text)
    assert next(d for d in compared["drafts"] if d["model"] == "lab:alpha")["citations"][0]["url"] == page
    for shown in (fused, polled):
        assert shown["sources"][0] == f"[1] Quillon footbridge <{page}>" and shown["answer"].endswith("[1].")
        assert not any(line.startswith("flagged:") for line in shown["sources"])
    assert run["sources"][0]["url"] == page and run["sources"][0]["drafts"] and "1911" in run["sources"][0]["snippet"]
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ask", "When?", "--ensemble", "lab"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "FUSION_MCP_ENSEMBLES": str(ensemble_dir)})
    assert out.returncode == 0, out.stderr
    assert f"[1] Quillon footbridge <{page}> (drafts " in out.stdout and "web: 2 tool call(s)" in out.stdout


@pytest.mark.anyio
async def test_spending_cap_counts_the_tool_turns_and_searches(upstream: Upstream, web: Web, ensemble_dir: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusion_mcp.fusion.budget import OverBudgetError

    prices = tmp_path / "prices.toml"
    prices.write_text("".join(f'["lab:{m}"]\ninput = 1.0\noutput = 2.0\n' for m in ("alpha", "beta", "judge", "fuser")))
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    upstream.script("alpha", tool_calls=researcher, text=researcher_answer)
    upstream.script("beta", text="Other.")
    upstream.script("judge", scoring_reviewer({}))
    upstream.script("fuser", text="Fused.")
    drafters: list[Any] = [{"model": "alpha", "tools": ["web_search", "web_fetch"]}, "beta"]
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, drafters,
                                                    extra="max_tool_calls = 2\nsearch_price_usd = 0.5\n"))
    async with FusionEngine(reg, pricing=env_pricing()) as engine:
        with pytest.raises(OverBudgetError, match=r"draft lab:alpha \$1\.0"):
            await engine.fuse("When?", ensemble="lab", max_cost_usd=0.9)  # two searches at $0.50 cannot fit
        assert upstream.calls() == [] and web.queries == []  # refused before anything was sent
        result = await engine.fuse("When?", ensemble="lab", max_cost_usd=2.0)
    alpha = next(d for d in result.drafts if d.model == "lab:alpha")
    assert alpha.status == "ok" and alpha.tool_calls == 2 and web.queries == ["Quillon footbridge opening date"]
    assert alpha.cost_usd is not None and alpha.cost_usd >= 0.5  # its three turns and its one search
    assert result.totals.cost_usd is not None and result.totals.cost_usd >= 0.5
