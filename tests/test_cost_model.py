"""One cost model (config/cost_model.py) behind every estimate: what `list_ensembles` shows is exactly
the spending cap's bound for its reference question, and tune counts a prompt as the cap does."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion_mcp.config.cost_model import TYPICAL_DRAFT_TOKENS, reference_question
from fusion_mcp.config.ensemble_list import ensemble_list_of
from fusion_mcp.evaluation.candidates import Candidate
from fusion_mcp.evaluation.datasets import Item
from fusion_mcp.evaluation.tune_cost import estimate as tune_estimate
from fusion_mcp.fusion.budget import OverBudgetError
from fusion_mcp.fusion.engine import FusionEngine
from fusion_mcp.fusion.estimate import estimate_run, reference_estimate
from tests.conftest import env_pricing, lab_toml, review_json, write_registry
from tests.upstream import Upstream

PRICES = '["lab:alpha"]\ninput = 1.0\noutput = 2.0\n["lab:beta"]\ninput = 0.5\noutput = 1.5\n' \
         '["lab:judge"]\ninput = 3.0\noutput = 4.0\n["lab:fuser"]\ninput = 2.0\noutput = 8.0\n'


@pytest.fixture
def priced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))


@pytest.mark.anyio
async def test_the_listed_cost_is_the_caps_bound_for_the_reference_question(
        priced: None, upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("alpha", text="Paris.")
    upstream.script("beta", text="Paris, France.")
    upstream.script("judge", text=review_json({"A": (8, 8, 8), "B": (7, 7, 7)}))
    upstream.script("fuser", text="Paris.")
    registry = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    listed = {e.name: e for e in ensemble_list_of(registry, env_pricing(), reference_estimate).ensembles}["lab"]
    bound = estimate_run(registry.get("lab"), reference_question(), None, env_pricing())
    assert listed.estimated_cost_usd is not None and listed.estimated_cost_usd > 0
    assert listed.estimated_cost_usd == pytest.approx(bound.total_usd)
    async with FusionEngine(registry, pricing=env_pricing()) as engine:
        with pytest.raises(OverBudgetError):  # a cap just under the listed figure: refused before any call
            await engine.fuse(reference_question(), ensemble="lab", max_cost_usd=listed.estimated_cost_usd * 0.99)
        assert upstream.calls("alpha") == []
        result = await engine.fuse(reference_question(), ensemble="lab", max_cost_usd=listed.estimated_cost_usd)
    assert result.answer == "Paris." and result.estimated_cost_usd == pytest.approx(listed.estimated_cost_usd)


def test_tune_counts_a_draft_prompt_as_the_cap_does(priced: None, upstream: Upstream, ensemble_dir: Path) -> None:
    registry = write_registry(ensemble_dir, lab=lab_toml(
        upstream.url, [{"model": "alpha", "max_tokens": TYPICAL_DRAFT_TOKENS}], reviewer=None, synthesizer=None))
    role = registry.get("lab").drafters[0]
    item = Item(id="1", question="What is the capital of France? " * 20, answer="Paris", answer_type="text")
    tune = tune_estimate([item], [Candidate("alpha", role)], [None], [None], panels=0, panel_size=1, cache=None,
                         pricing=env_pricing())
    cap = estimate_run(registry.get("lab"), item.prompt(), None, env_pricing())  # the same draft, bounded at max_tokens
    assert tune.draft_usd == pytest.approx(cap.total_usd)
