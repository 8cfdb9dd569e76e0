"""What the MCP tools return: compact pydantic models built from the engine's results.

No `from __future__ import annotations` here on purpose: `mcp run` / `mcp dev` load modules under
a fake name, and string annotations on tool return types then silently lose the outputSchema.

The models are small because a tool result lands in the host model's context: provenance is a
few fields per draft, and draft texts come only when asked for.
"""

from typing import Literal

from pydantic import BaseModel, Field

from ..config.ensemble_list import EnsembleList, ensemble_list_of  # noqa: F401  (list_ensembles returns it)
from ..fusion.result import Analysis, Citation, Draft, FusionResult, Stage
from .confidence import Confidence, confidence_of

# -- shared pieces ---------------------------------------------------------------------------


class StageInfo(BaseModel):
    model: str | None = None
    status: str
    error: str | None = None


class Usage(BaseModel):
    cost_usd: float | None = Field(default=None, description="Known cost of all calls; null when unknown.")
    cost_complete: bool = Field(default=True, description="False when some call's cost is unknown.")
    input_tokens: int = 0
    output_tokens: int = 0
    wall_s: float = 0.0


class Running(BaseModel):
    """A run still going when its tool call had to return."""

    elapsed_s: float
    time_left_s: float = Field(description="Until the run's own deadline.")
    progress: str | None = Field(default=None, description="The last step finished, e.g. 'draft B (...): ok'.")
    steps_done: int = 0
    steps_total: int | None = None
    next: str = Field(description="What to do now.")


def running_of(run_id: str, elapsed_s: float, time_left_s: float, done: int, total: int | None,
               progress: str | None, wait_s: float) -> Running:
    return Running(
        elapsed_s=elapsed_s, time_left_s=time_left_s, progress=progress, steps_done=done, steps_total=total,
        next=f"call get_run with run_id {run_id!r} (it waits up to {wait_s:g} s); repeat until status is 'done'",
    )


def _stage(stage: Stage) -> StageInfo:
    return StageInfo(model=stage.model, status=stage.status, error=stage.error)


def _usage(result: FusionResult) -> Usage:
    t = result.totals
    return Usage(cost_usd=t.cost_usd, cost_complete=t.cost_complete, input_tokens=t.input_tokens,
                 output_tokens=t.output_tokens, wall_s=t.wall_s)


def _score(d: Draft) -> float | None:
    return round(d.scores.overall, 2) if d.scores else None


# -- fused_answer ----------------------------------------------------------------------------


class DraftInfo(BaseModel):
    label: str
    model: str
    status: str
    weight: float = Field(description="Share in the synthesis, 0-1.")
    score: float | None = Field(default=None, description="Reviewer's mean score, 0-10.")
    error: str | None = None
    latency_s: float
    truncated: bool = Field(default=False, description="Cut off by its token limit.")
    text: str | None = Field(default=None, description="Only with include_drafts.")


class FusedAnswer(BaseModel):
    status: Literal["done", "running"] = Field(
        default="done", description="'running': the run goes on; call get_run(run_id) until 'done'.")
    run_id: str = Field(description="Read run://<run_id> for every detail.")
    ensemble: str
    answer: str = ""
    answer_source: Literal["synthesis", "best_draft", "none"] = "none"
    confidence: Confidence | None = None
    drafts: list[DraftInfo] = Field(default_factory=list)
    review: StageInfo | None = None
    synthesis: StageInfo | None = None
    usage: Usage | None = None
    degraded: bool = False
    degraded_reasons: list[str] = Field(default_factory=list)
    running: Running | None = None
    sources: list[str] = Field(default_factory=list, description=(
        "'[n] title <url>': what the answer's [n] cite; 'flagged: ...': a citation no draft read."))


def fused_answer_of(result: FusionResult, include_drafts: bool) -> FusedAnswer:
    return FusedAnswer(
        answer=result.answer or "",
        answer_source=result.answer_source,
        run_id=result.run_id,
        ensemble=result.ensemble,
        confidence=confidence_of(result),
        drafts=[
            DraftInfo(label=d.label, model=d.model, status=d.status, weight=d.weight, score=_score(d), error=d.error,
                      latency_s=d.latency_s, truncated=d.truncated, text=d.text if include_drafts else None)
            for d in result.drafts
        ],
        review=_stage(result.review),
        synthesis=_stage(result.synthesis),
        usage=_usage(result),
        degraded=result.degraded,
        degraded_reasons=result.degraded_reasons,
        sources=[f"[{s.n}] {s.title or ''} <{s.url}>".replace("  ", " ") for s in result.sources]
        + [f"flagged: {flag}" for flag in result.citation_flags],
    )


# -- compare_drafts --------------------------------------------------------------------------


class ComparedDraft(BaseModel):
    label: str
    model: str
    status: str
    error: str | None = None
    text: str | None = None
    consistency: float | None = Field(default=None, description="0-10, from the reviewer.")
    accuracy: float | None = Field(default=None, description="0-10, from the reviewer.")
    completeness: float | None = Field(default=None, description="0-10, from the reviewer.")
    reason: str | None = Field(default=None, description="The reviewer's reason.")
    agreement: float | None = Field(default=None, description="Word overlap with the other drafts, 0-1.")
    weight: float = Field(description="Weight a synthesis would give it, 0-1.")
    truncated: bool = Field(default=False, description="Cut off by its token limit.")
    citations: list[Citation] = Field(default_factory=list, description="Web sources (web-search drafters).")


class Comparison(BaseModel):
    status: Literal["done", "running"] = Field(
        default="done", description="'running': the run goes on; call get_run(run_id) until 'done'.")
    run_id: str = Field(description="Pass as fused_answer(from_run=...) to fuse these drafts without re-drafting.")
    ensemble: str
    drafts: list[ComparedDraft] = Field(default_factory=list)
    agreement: float | None = Field(default=None, description="Mean overlap between drafts, 0-1; low = they disagree.")
    most_agreed: str | None = Field(default=None, description="Label of the draft closest to the others.")
    least_agreed: str | None = Field(default=None, description="Label of the outlier draft.")
    best: str | None = Field(default=None, description="Label of the best-weighted draft.")
    analysis: Analysis | None = Field(default=None, description="The reviewer's comparison; labels mapped to models.")
    review: StageInfo | None = None
    usage: Usage | None = None
    degraded_reasons: list[str] = Field(default_factory=list)
    running: Running | None = None


def comparison_of(result: FusionResult) -> Comparison:
    ok = [d for d in result.ok_drafts() if d.agreement is not None]
    best = result.best_draft()
    drafts = []
    for d in sorted(result.drafts, key=lambda d: d.label):
        s = d.scores
        drafts.append(ComparedDraft(
            label=d.label, model=d.model, status=d.status, error=d.error, text=d.text,
            consistency=s.consistency if s else None, accuracy=s.accuracy if s else None,
            completeness=s.completeness if s else None, reason=(s.reason or None) if s else None,
            agreement=d.agreement, weight=d.weight, truncated=d.truncated, citations=d.citations,
        ))
    return Comparison(
        run_id=result.run_id,
        ensemble=result.ensemble,
        drafts=drafts,
        agreement=result.agreement,
        most_agreed=max(ok, key=lambda d: d.agreement or 0.0).label if len(ok) > 1 else None,
        least_agreed=min(ok, key=lambda d: d.agreement or 0.0).label if len(ok) > 1 else None,
        best=best.label if best else None,
        analysis=result.analysis,
        review=_stage(result.review),
        usage=_usage(result),
        degraded_reasons=result.degraded_reasons,
    )
