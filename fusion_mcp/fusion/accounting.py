"""What a run spent: usage, cost and time of the calls it made, and its critical path."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.ensembles import ModelRole
from .result import CriticalStep, Draft, Stage, Totals


@dataclass
class StageTimes:
    """Wall seconds spent in each stage of one run."""

    started: float  # the run clock's reading at the start of the run
    draft_s: float = 0.0
    review_s: float = 0.0
    synthesis_s: float = 0.0


def cost_of_failure(role: ModelRole) -> float | None:
    """A failed local call cost nothing; a failed hosted one may still be billed (unknown)."""
    return 0.0 if role.provider.kind == "local" else None


def totals(drafts: list[Draft], review: Stage, synthesis: Stage, times: StageTimes, now: float,
           *, reused: bool = False) -> Totals:
    """Usage, cost and time of the calls this run made. A resumed run (`reused`) made only its
    synthesis: the drafts and review it reused were counted in the run that made them.
    A call that timed out may still be billed upstream, so its cost counts as unknown."""
    calls: list[tuple[str, int | None, int | None, float | None]] = []
    path: list[CriticalStep] = []
    if not reused:
        calls += [(d.model, d.input_tokens, d.output_tokens, d.cost_usd)
                  for d in drafts if d.status in ("ok", "timeout")]
        ok = [d for d in drafts if d.status == "ok"]
        if ok:
            slowest = max(ok, key=lambda d: d.latency_s)
            path.append(CriticalStep(stage="draft", model=slowest.model, latency_s=slowest.latency_s))
    stages = [("synthesis", synthesis)] if reused else [("review", review), ("synthesis", synthesis)]
    for name, stage in stages:
        if stage.model and (stage.answered or stage.status == "timeout"):
            calls.append((stage.model, stage.input_tokens, stage.output_tokens, stage.cost_usd))
        if stage.model and stage.latency_s:
            path.append(CriticalStep(stage=name, model=stage.model, latency_s=stage.latency_s))  # type: ignore[arg-type]
    known = [c for _, _, _, c in calls if c is not None]
    return Totals(
        input_tokens=sum(i or 0 for _, i, _, _ in calls),
        output_tokens=sum(o or 0 for _, _, o, _ in calls),
        cost_usd=round(sum(known), 8) if known else None,
        cost_complete=len(known) == len(calls),
        unknown_cost_calls=[m for m, _, _, c in calls if c is None],
        wall_s=round(now - times.started, 3),
        draft_s=round(times.draft_s, 3),
        review_s=round(times.review_s, 3),
        synthesis_s=round(times.synthesis_s, 3),
        critical_path=path,
        critical_path_s=round(sum(s.latency_s for s in path), 3),
    )
