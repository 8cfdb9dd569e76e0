"""Strategies: ways to turn one fusion run into one answer, each with the cost and latency it needs.

One engine run per item gives the drafts, the review weights and the fused answer. Every strategy
but `fuse` (and a baseline, which is its own run) is read off the same run at no extra model cost:
its cost is that of the calls it needs (the drafts; plus the review for best-reviewed), its latency
that of its critical path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: `fusion-mcp --help` reads this module's names without the engine
    from ..config.ensembles import Ensemble
    from ..fusion.result import Draft, FusionResult, Stage
from .datasets import Item
from .names import BASELINE, BEST, ENSEMBLE_STRATEGIES, FUSE, ORACLE, SINGLE, VOTE
from .scoring import extract, gold, is_correct

__all__ = ["BASELINE", "BEST", "ENSEMBLE_STRATEGIES", "FUSE", "ORACLE", "SINGLE", "VOTE"]
NOTES = {
    ORACLE: "ceiling: right if any draft is right; not a real strategy",
    VOTE: "majority of the drafts' answers; a tie goes to the earliest drafter in the file",
    BEST: "the draft with the highest review weight",
    FUSE: "review + synthesis: the product",
}


@dataclass(frozen=True)
class Outcome:
    """One strategy's answer to one item."""

    prediction: str | None
    correct: bool
    unparseable: bool  # there was an answer, and nothing could be extracted from it
    failed: str | None  # the call(s) this strategy needs failed: no answer at all
    cost_usd: float | None  # None: unknown
    cost_complete: bool
    latency_s: float | None


def single_names(ensemble: Ensemble) -> list[str]:
    """`single:<ref>` per drafter; `#N` (its place in the file) tells repeated models apart."""
    refs = [d.ref for d in ensemble.drafters]
    return [f"{SINGLE}:{ref}" + (f"#{i + 1}" if refs.count(ref) > 1 else "") for i, ref in enumerate(refs)]


def strategy_names(ensemble: Ensemble, wanted: list[str] | None = None) -> list[str]:
    """The strategies to report for an ensemble, in report order; `wanted` filters by kind or full name."""
    names: list[str] = []
    for kind in ENSEMBLE_STRATEGIES:
        if kind == SINGLE:
            names += single_names(ensemble)
        elif kind == BEST and ensemble.reviewer is None:
            continue  # without a reviewer every weight is the configured one: nothing to select by
        elif kind == VOTE and len(ensemble.drafters) < 2:
            continue
        else:
            names.append(kind)
    if wanted:
        names = [n for n in names if n in wanted or n.split(":", 1)[0] in wanted]
    return names


def _costs(calls: list[tuple[float | None]]) -> tuple[float | None, bool]:
    known = [c for (c,) in calls if c is not None]
    return (round(sum(known), 10) if known else None), len(known) == len(calls)


def _stage_ran(stage: Stage) -> bool:
    return stage.model is not None and stage.answered


def _draft_calls(drafts: list[Draft]) -> list[tuple[float | None]]:
    return [(d.cost_usd,) for d in drafts if d.status == "ok"]


def _from_text(text: str | None, item: Item, cost: tuple[float | None, bool], latency: float | None) -> Outcome:
    prediction = extract(text, item)
    return Outcome(prediction=prediction, correct=is_correct(prediction, item),
                   unparseable=prediction is None, failed=None,
                   cost_usd=cost[0], cost_complete=cost[1], latency_s=latency)


def _failed(reason: str, cost: tuple[float | None, bool] = (None, True), latency: float | None = None) -> Outcome:
    return Outcome(prediction=None, correct=False, unparseable=False, failed=reason,
                   cost_usd=cost[0], cost_complete=cost[1], latency_s=latency)


def vote(answers: list[str | None]) -> str | None:
    """The most common extracted answer; a tie goes to the one that appears first (drafter order)."""
    counted = Counter(a for a in answers if a is not None)
    if not counted:
        return None
    top = max(counted.values())
    return next(a for a in answers if a is not None and counted[a] == top)


def apply(result: FusionResult, item: Item, ensemble: Ensemble, names: list[str]) -> dict[str, Outcome]:
    """Every named strategy's outcome from one run (drafts are in the ensemble file's drafter order)."""
    drafts = result.drafts
    ok = [d for d in drafts if d.status == "ok"]
    extracted = [extract(d.text, item) if d.status == "ok" else None for d in drafts]
    draft_cost = _costs(_draft_calls(drafts))
    draft_latency = max((d.latency_s for d in ok), default=None)
    out: dict[str, Outcome] = {}
    singles = dict(zip(single_names(ensemble), range(len(drafts)), strict=False))
    for name in names:
        if name == FUSE:
            calls = _draft_calls(drafts) + [(s.cost_usd,) for s in (result.review, result.synthesis) if _stage_ran(s)]
            out[name] = _from_text(result.answer, item, _costs(calls), result.totals.critical_path_s)
        elif name == VOTE:
            answers = [a for a, d in zip(extracted, drafts, strict=False) if d.status == "ok"]
            prediction = vote(answers)
            out[name] = Outcome(prediction=prediction, correct=is_correct(prediction, item),
                                unparseable=prediction is None, failed=None, cost_usd=draft_cost[0],
                                cost_complete=draft_cost[1], latency_s=draft_latency)
        elif name == BEST:
            best = result.best_draft()
            review_ran = _stage_ran(result.review)
            calls = _draft_calls(drafts) + ([(result.review.cost_usd,)] if review_ran else [])
            latency = (draft_latency or 0.0) + (result.review.latency_s if review_ran else 0.0)
            out[name] = _from_text(best.text if best else None, item, _costs(calls), latency)
        elif name == ORACLE:
            right = [a for a in extracted if is_correct(a, item)]
            parsed = [a for a in extracted if a is not None]
            prediction = right[0] if right else (parsed[0] if parsed else None)
            out[name] = Outcome(prediction=prediction, correct=bool(right), unparseable=not parsed, failed=None,
                                cost_usd=draft_cost[0], cost_complete=draft_cost[1], latency_s=draft_latency)
        elif name in singles:
            d = drafts[singles[name]]
            if d.status != "ok":
                out[name] = _failed(f"{d.status}: {d.error}", latency=d.latency_s)
            else:
                out[name] = _from_text(d.text, item, _costs([(d.cost_usd,)]), d.latency_s)
    return out


def baseline(result: FusionResult, item: Item) -> Outcome:
    """A one-drafter run: the model's own answer."""
    d = result.drafts[0]
    if d.status != "ok":
        return _failed(f"{d.status}: {d.error}", latency=d.latency_s)
    return _from_text(d.text, item, _costs([(d.cost_usd,)]), d.latency_s)


def failed_all(names: list[str], reason: str) -> dict[str, Outcome]:
    """The run itself failed (no draft at all): every strategy has no answer."""
    return {name: _failed(reason) for name in names}


def gold_text(item: Item) -> str:
    return " | ".join(sorted(gold(item)))
