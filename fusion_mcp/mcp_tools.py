"""What the MCP tools return: compact pydantic models built from the engine's results.

No `from __future__ import annotations` here on purpose: `mcp run` / `mcp dev` load modules under
a fake name, and string annotations on tool return types then silently lose the outputSchema.

The models are small because a tool result lands in the host model's context: provenance is a
few fields per draft, and draft texts come only when asked for.
"""

from typing import Literal

from pydantic import BaseModel, Field

from .ensembles import Ensemble, EnsembleRegistry, ModelRole
from .errors import UnknownEnsembleError
from .fusion.result import Draft, FusionResult, Stage
from .pricing import price_for

# The token budget behind `list_ensembles`' cost estimate. Stated in the result, because real
# cost scales with the question, the context and the answers' length.
ASSUMED_PROMPT_TOKENS = 500
ASSUMED_DRAFT_TOKENS = 600
ASSUMED_REVIEW_TOKENS_PER_DRAFT = 100
ASSUMED_ANSWER_TOKENS = 600
COST_ASSUMPTION = (
    f"estimate per call, assuming a {ASSUMED_PROMPT_TOKENS}-token prompt, {ASSUMED_DRAFT_TOKENS}-token drafts, "
    f"a review that reads every draft and writes {ASSUMED_REVIEW_TOKENS_PER_DRAFT} tokens per draft, and a "
    f"synthesis that reads every draft and writes {ASSUMED_ANSWER_TOKENS} tokens (output capped at a role's "
    "max_tokens); long questions, context or answers cost more"
)


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
    text: str | None = Field(default=None, description="Only with include_drafts.")


class FusedAnswer(BaseModel):
    answer: str
    answer_source: Literal["synthesis", "best_draft", "none"]
    run_id: str = Field(description="Read run://<run_id> for every detail.")
    ensemble: str
    drafts: list[DraftInfo]
    review: StageInfo
    synthesis: StageInfo
    usage: Usage
    degraded: bool
    degraded_reasons: list[str] = Field(default_factory=list)


def fused_answer_of(result: FusionResult, include_drafts: bool) -> FusedAnswer:
    return FusedAnswer(
        answer=result.answer or "",
        answer_source=result.answer_source,
        run_id=result.run_id,
        ensemble=result.ensemble,
        drafts=[
            DraftInfo(label=d.label, model=d.model, status=d.status, weight=d.weight, score=_score(d), error=d.error,
                      latency_s=d.latency_s, text=d.text if include_drafts else None)
            for d in result.drafts
        ],
        review=_stage(result.review),
        synthesis=_stage(result.synthesis),
        usage=_usage(result),
        degraded=result.degraded,
        degraded_reasons=result.degraded_reasons,
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


class Comparison(BaseModel):
    run_id: str = Field(description="Pass as fused_answer(from_run=...) to fuse these drafts without re-drafting.")
    ensemble: str
    drafts: list[ComparedDraft]
    agreement: float | None = Field(default=None, description="Mean overlap between drafts, 0-1; low = they disagree.")
    most_agreed: str | None = Field(default=None, description="Label of the draft closest to the others.")
    least_agreed: str | None = Field(default=None, description="Label of the outlier draft.")
    best: str | None = Field(default=None, description="Label of the best-weighted draft.")
    review: StageInfo
    usage: Usage
    degraded_reasons: list[str] = Field(default_factory=list)


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
            agreement=d.agreement, weight=d.weight,
        ))
    return Comparison(
        run_id=result.run_id,
        ensemble=result.ensemble,
        drafts=drafts,
        agreement=result.agreement,
        most_agreed=max(ok, key=lambda d: d.agreement or 0.0).label if len(ok) > 1 else None,
        least_agreed=min(ok, key=lambda d: d.agreement or 0.0).label if len(ok) > 1 else None,
        best=best.label if best else None,
        review=_stage(result.review),
        usage=_usage(result),
        degraded_reasons=result.degraded_reasons,
    )


# -- list_ensembles --------------------------------------------------------------------------


class ModelInfo(BaseModel):
    role: Literal["drafter", "reviewer", "synthesizer"]
    model: str
    priced: bool = Field(description="Whether a price is known (the local model is free).")


class EnsembleInfo(BaseModel):
    name: str
    description: str
    default: bool
    ready: bool = Field(description="True when every API key it needs is set.")
    missing_keys: list[str] = Field(default_factory=list, description="Environment variables to set.")
    deadline_s: float
    models: list[ModelInfo]
    estimated_cost_usd: float | None = Field(
        default=None, description="Per call, see cost_assumption; null when a model's price is unknown."
    )


class EnsembleList(BaseModel):
    ensembles: list[EnsembleInfo]
    default: str | None = None
    default_reason: str
    cost_assumption: str = COST_ASSUMPTION
    broken_files: dict[str, str] = Field(default_factory=dict, description="Ensemble files that failed to load.")


def _call_cost(role: ModelRole, input_tokens: int, output_tokens: int) -> float | None:
    if role.provider.kind == "local":
        return 0.0
    price = price_for(role.ref)
    if price is None:
        return None
    if role.max_tokens is not None:
        output_tokens = min(output_tokens, role.max_tokens)
    return price.cost(input_tokens, output_tokens)


def estimate_cost(ensemble: Ensemble) -> float | None:
    """The cost of one fused answer under the stated token budget; None if any price is unknown."""
    n = len(ensemble.drafters)
    read_all = ASSUMED_PROMPT_TOKENS + n * ASSUMED_DRAFT_TOKENS
    costs = [_call_cost(d, ASSUMED_PROMPT_TOKENS, ASSUMED_DRAFT_TOKENS) for d in ensemble.drafters]
    if ensemble.reviewer and n > 1:
        costs.append(_call_cost(ensemble.reviewer, read_all, n * ASSUMED_REVIEW_TOKENS_PER_DRAFT))
    if ensemble.synthesizer and n > 1:
        costs.append(_call_cost(ensemble.synthesizer, read_all, ASSUMED_ANSWER_TOKENS))
    if any(c is None for c in costs):
        return None
    return round(sum(c for c in costs if c is not None), 6)


def ensemble_list_of(registry: EnsembleRegistry) -> EnsembleList:
    try:
        default, why = registry.default()
    except UnknownEnsembleError:
        default, why = None, "no ensemble found"
    infos = []
    for name in registry.names():
        e = registry.ensembles[name]
        infos.append(EnsembleInfo(
            name=name,
            description=e.description,
            default=name == default,
            ready=not e.missing_keys(),
            missing_keys=e.missing_keys(),
            deadline_s=e.deadline_s,
            models=[ModelInfo(role=role, model=r.ref, priced=r.provider.kind == "local" or price_for(r.ref) is not None)
                    for role, r in e.roles],
            estimated_cost_usd=estimate_cost(e),
        ))
    return EnsembleList(
        ensembles=infos, default=default, default_reason=why,
        broken_files={name: str(exc) for name, exc in registry.errors.items()},
    )
