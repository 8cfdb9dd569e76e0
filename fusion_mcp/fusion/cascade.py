"""Cascades: a cheap panel drafts first, and the run goes on with a bigger ensemble only when the
cheap drafts disagree (FrugalGPT's idea: pay for the frontier only where the cheap models do not agree).

Disagreement is read two ways: the drafts' final answers differ (the extraction unanimity uses), or,
when the drafts name no final answer to compare, the reviewer reports a contradiction.
"""

from __future__ import annotations

from .result import Analysis, Draft, Escalation, FusionResult
from .unanimity import final_answer


def answers_differ(ok: list[Draft]) -> str | None:
    """Why the drafts disagree on their final answer, or None when the answers they name agree (a draft
    that names none is left to the review, which escalates on a contradiction)."""
    answers = [final_answer(d.text or "") for d in ok]
    named = {a for a in answers if a is not None}
    if len(named) > 1:
        shown = ", ".join(f"{d.label}: {a!r}" if a is not None else f"{d.label}: none"
                          for d, a in zip(ok, answers, strict=True))
        return f"the drafts' final answers differ ({shown[:200]})"
    return None


def disputed(analysis: Analysis | None) -> str | None:
    """The reviewer's first contradiction, as a reason to escalate; None when it reports none."""
    if analysis is None or not analysis.contradictions:
        return None
    topics = "; ".join(c.topic for c in analysis.contradictions)
    return f"the reviewer reports a contradiction ({topics[:200]})"


def combine(first: FusionResult, later: FusionResult, why: str) -> FusionResult:
    """The later ensemble's result, with the first panel kept in `escalation` and counted in the totals."""
    f, t = first.totals, later.totals
    costs = [c for c in (f.cost_usd, t.cost_usd) if c is not None]
    totals = t.model_copy(update={
        "input_tokens": f.input_tokens + t.input_tokens,
        "output_tokens": f.output_tokens + t.output_tokens,
        "cost_usd": round(sum(costs), 8) if costs else None,
        "cost_complete": f.cost_complete and t.cost_complete,
        "unknown_cost_calls": f.unknown_cost_calls + t.unknown_cost_calls,
        "wall_s": round(f.wall_s + t.wall_s, 3),
        "draft_s": round(f.draft_s + t.draft_s, 3),
        "review_s": round(f.review_s + t.review_s, 3),
        "critical_path": [s for s in f.critical_path if s.stage != "synthesis"] + t.critical_path,
    })
    totals.critical_path_s = round(sum(s.latency_s for s in totals.critical_path), 3)
    escalation = Escalation(from_ensemble=first.ensemble, to_ensemble=later.ensemble, reason=why, drafts=first.drafts,
                            review=first.review if first.review.model else None, analysis=first.analysis,
                            cost_usd=f.cost_usd, wall_s=f.wall_s)
    schedule = later.schedule
    if schedule is not None and first.schedule is not None:
        schedule = schedule.model_copy(update={"decisions": first.schedule.decisions + schedule.decisions})
    reasons = [f"{first.ensemble} (first panel): {r}" for r in first.degraded_reasons] + later.degraded_reasons
    return later.model_copy(update={
        "ensemble": first.ensemble, "escalation": escalation, "totals": totals, "schedule": schedule,
        "degraded_reasons": reasons, "degraded": bool(reasons),
        "max_cost_usd": first.max_cost_usd, "estimated_cost_usd": first.estimated_cost_usd,
    })

