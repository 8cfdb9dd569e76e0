"""The spending cap: a run whose estimate could pass max_cost_usd, or that uses a model without a
known price, is refused before anything is sent; within a run, no call starts once the spend so
far plus that call's most would pass the cap. Over the loopback upstream, through the tools and
the CLI. The engine's own checks run through the test provider (`lab`: no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fusion_mcp import FusionEngine
from fusion_mcp.cli.main import main
from fusion_mcp.fusion.estimate import DEFAULT_OUTPUT_LIMIT, estimate_run
from fusion_mcp.fusion.test_provider import TestProvider
from fusion_mcp.server.app import create_server
from tests.conftest import env_pricing, lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream

PRICED = ["alpha", "beta", "judge", "fuser"]


@pytest.fixture
def prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text("".join(f'["lab:{m}"]\ninput = 1.0\noutput = 2.0\n' for m in PRICED))
    monkeypatch.setenv("FUSION_MCP_PRICES", str(path))
    return path


def script(upstream: Upstream) -> None:
    upstream.script("alpha", text="Paris is the capital of France.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")


async def _call(upstream: Upstream, folder: Path, tool: str, args: dict[str, Any], toml: str | None = None) -> Any:
    server = create_server(write_registry(folder, lab=toml or lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        return await client.call_tool(tool, {"ensemble": "lab", "question": "Capital of France?", **args})


def test_the_estimate_counts_prompt_and_output_limits(prices: Path, ensemble_dir: Path) -> None:
    reg = write_registry(ensemble_dir, lab=lab_toml(None, ["alpha", {"model": "beta", "max_tokens": 100}]))
    est = estimate_run(reg.get("lab"), "Capital of France?", None, env_pricing())
    by_stage = {(stage, model): usd for stage, model, usd in est.calls}
    assert set(by_stage) == {("draft", "lab:alpha"), ("draft", "lab:beta"), ("review", "lab:judge"),
                             ("synthesis", "lab:fuser")}
    # a drafter with no max_tokens counts its default limit, one with 100 counts 100 output tokens
    assert by_stage[("draft", "lab:alpha")] > DEFAULT_OUTPUT_LIMIT * 2.0 / 1e6
    assert by_stage[("draft", "lab:beta")] < 200 * 2.0 / 1e6 + 0.001
    # the review reads both drafts at their limits, so it costs more input than a draft
    assert by_stage[("review", "lab:judge")] > (DEFAULT_OUTPUT_LIMIT + 100) * 1.0 / 1e6
    longer = estimate_run(reg.get("lab"), "Capital of France? " * 500, None, env_pricing())
    assert longer.total_usd > est.total_usd


@pytest.mark.anyio
async def test_over_the_cap_is_refused_before_anything_is_sent(prices: Path, upstream: Upstream, ensemble_dir: Path):
    script(upstream)
    for tool in ("fused_answer", "compare_drafts"):
        result = await _call(upstream, ensemble_dir, tool, {"max_cost_usd": 0.001})
        assert result.is_error
        text = result.content[0].text
        assert "over max_cost_usd $0.001000" in text and "nothing was sent" in text
        assert "draft lab:alpha $0." in text and "review lab:judge" in text
    assert upstream.calls() == []


@pytest.mark.anyio
async def test_a_model_without_a_price_is_refused_by_name(prices: Path, upstream: Upstream, ensemble_dir: Path):
    script(upstream)
    toml = lab_toml(upstream.url, ["alpha", "gamma"])
    result = await _call(upstream, ensemble_dir, "fused_answer", {"max_cost_usd": 5}, toml)
    assert result.is_error and "no price is known for lab:gamma" in result.content[0].text
    assert upstream.calls() == []
    unpriced_ok = await _call(upstream, ensemble_dir, "fused_answer", {}, toml)  # no cap: runs, cost unknown
    assert not unpriced_ok.is_error


@pytest.mark.anyio
async def test_within_the_cap_it_runs_with_the_limits_it_was_estimated_at(prices: Path, upstream: Upstream,
                                                                           ensemble_dir: Path):
    script(upstream)
    result = await _call(upstream, ensemble_dir, "fused_answer", {"max_cost_usd": 1.0})
    assert not result.is_error and result.structured_content["answer"] == "Paris."
    for model in PRICED:
        [call] = upstream.calls(model)
        assert call.body["max_tokens"] == DEFAULT_OUTPUT_LIMIT  # bounded as estimated


@pytest.mark.anyio
async def test_no_call_starts_once_the_spend_would_pass_the_cap(prices: Path, lab: TestProvider, ensemble_dir: Path):
    lab.script("alpha", text="Paris is the capital of France.", cost_usd=0.2)  # the upstream bills far more
    lab.script("beta", text="It is Lyon.", cost_usd=None)
    reg = write_registry(ensemble_dir, lab=lab_toml(None, ["alpha", "beta"]))
    async with FusionEngine(reg, pricing=env_pricing(), providers={"lab": lab}) as engine:
        result = await engine.fuse("Capital of France?", ensemble="lab", max_cost_usd=0.1)
    assert result.max_cost_usd == 0.1 and 0 < result.estimated_cost_usd < 0.1
    assert lab.calls_to("judge") == [] and lab.calls_to("fuser") == []
    assert result.review.status == "failed" and "would pass max_cost_usd $0.1000" in result.review.error
    assert result.synthesis.status == "failed" and result.answer_source == "best_draft"
    assert result.degraded


@pytest.mark.anyio
async def test_from_run_is_estimated_on_its_synthesis_alone(prices: Path, upstream: Upstream, ensemble_dir: Path):
    script(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        cmp = await client.call_tool("compare_drafts", {"ensemble": "lab", "question": "Capital?"})
        run_id = cmp.structured_content["run_id"]
        low = await client.call_tool("fused_answer", {"from_run": run_id, "max_cost_usd": 0.0001})
        assert low.is_error and "synthesis lab:fuser" in low.content[0].text and "draft" not in low.content[0].text
        ok = await client.call_tool("fused_answer", {"from_run": run_id, "max_cost_usd": 0.05})
    assert not ok.is_error and ok.structured_content["answer"] == "Paris."


def test_cli_max_cost_refuses_with_the_estimate(prices: Path, upstream: Upstream, ensemble_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    code = main(["ask", "Capital?", "--ensemble", "lab", "--ensembles", str(ensemble_dir), "--max-cost", "0.001"])
    err = capsys.readouterr().err
    assert code == 2 and "over max_cost_usd" in err and "lab:alpha" in err
    assert upstream.calls() == []
    with pytest.raises(SystemExit):
        main(["ask", "Capital?", "--max-cost", "-1"])
    assert "must be a number of dollars above 0" in capsys.readouterr().err



def test_web_search_adds_its_cost_to_the_estimate(prices: Path, ensemble_dir: Path) -> None:
    toml = lab_toml(None, [{"model": "alpha", "web": True}, "beta"], provider_extra="max_retries = 0\nweb_plugin = true")
    plain = estimate_run(write_registry(ensemble_dir, lab=lab_toml(None, ["alpha", "beta"])).get("lab"), "Q?",
                         None, env_pricing())
    searching = estimate_run(write_registry(ensemble_dir, lab=toml).get("lab"), "Q?", None, env_pricing())
    assert searching.total_usd - plain.total_usd == pytest.approx(0.02)


def test_an_online_variant_is_priced_as_its_model_plus_the_search(prices: Path, ensemble_dir: Path) -> None:
    from fusion_mcp.config.overrides import with_roles

    ensemble = write_registry(ensemble_dir, lab=lab_toml(None, ["alpha", "beta"])).get("lab")
    plain = estimate_run(ensemble, "Q?", None, env_pricing())
    online = estimate_run(with_roles(ensemble, ["lab:alpha:online", "lab:beta"]), "Q?", None, env_pricing())
    assert online.unpriced == [] and online.total_usd - plain.total_usd == pytest.approx(0.02)
