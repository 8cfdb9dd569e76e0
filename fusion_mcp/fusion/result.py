"""The result of a fusion run: the answer and its full provenance."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DraftStatus = Literal[
    "ok", "timeout", "rate_limited", "auth", "missing_key", "unknown_model", "bad_response", "upstream_error",
    "over_budget",
]
AnswerSource = Literal["synthesis", "best_draft", "none"]
StageStatus = Literal["ok", "truncated", "failed", "unparseable", "partial", "timeout", "skipped", "not_configured"]


class Scores(BaseModel):
    """The reviewer's marks for one draft, each 0-10."""

    consistency: float = Field(ge=0, le=10, description="semantic consistency")
    accuracy: float = Field(ge=0, le=10, description="factual accuracy")
    completeness: float = Field(ge=0, le=10, description="logical completeness")
    reason: str = ""

    @property
    def overall(self) -> float:
        return (self.consistency + self.accuracy + self.completeness) / 3


class Citation(BaseModel):
    """A source a draft searched or read: the web tools' results, or OpenRouter's `url_citation` annotations."""

    url: str
    title: str | None = None
    snippet: str | None = None  # the part of the source the model was given


class Source(BaseModel):
    """One entry of the result's `sources`: what the synthesis's `[n]` markers point to."""

    n: int
    url: str
    title: str | None = None
    snippet: str | None = None
    drafts: list[str] = Field(default_factory=list)  # labels of the drafts that searched or read it


class Draft(BaseModel):
    label: str = Field(description="Anonymous label the reviewer and synthesizer saw (A, B, ...).")
    model: str = Field(description="Model reference, provider:model-id.")
    status: DraftStatus
    text: str | None = None
    error: str | None = None
    scores: Scores | None = None
    agreement: float | None = Field(default=None, description="Mean word overlap with the other drafts, 0-1.")
    configured_weight: float = 1.0
    weight: float = Field(default=0.0, description="Share of the synthesis, 0-1; the weights of ok drafts sum to 1.")
    latency_s: float = 0.0
    ttft_s: float | None = Field(default=None, description="Time to the first token, when streamed.")
    output_tokens_per_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    truncated: bool = Field(default=False, description="The draft was cut off by its token limit.")
    citations: list[Citation] = Field(default_factory=list, description="Web sources, for web-search drafters.")
    tool_calls: int = Field(default=0, description="web_search / web_fetch calls the drafter made.")
    tool_log: list[str] = Field(default_factory=list, description="Each tool call and what came of it.")


class Stage(BaseModel):
    """The review or the synthesis call."""

    model: str | None = None
    status: StageStatus
    error: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    output_tokens_per_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    truncated: bool = Field(default=False, description="The reply was cut off by its token limit.")
    tool_calls: int = 0
    tool_log: list[str] = Field(default_factory=list, description="A reviewer's web_fetch calls and their outcome.")

    @property
    def answered(self) -> bool:
        """The call came back, so its usage and cost count, whatever its content was."""
        return self.status in ("ok", "truncated", "partial", "unparseable")


class Stance(BaseModel):
    label: str
    model: str | None = Field(default=None, description="The draft's model, mapped back from its label.")
    stance: str


class Contradiction(BaseModel):
    topic: str
    stances: list[Stance]
    checked_source: str | None = None  # the source a reviewer with web_fetch checked ...
    finding: str | None = None  # ... and what it says on the contradiction


class Coverage(BaseModel):
    point: str
    labels: list[str]
    models: list[str] = Field(default_factory=list)


class Insight(BaseModel):
    label: str
    model: str | None = None
    insight: str


class Analysis(BaseModel):
    """What the reviewer found across the drafts, beyond per-draft scores."""

    consensus: list[str] = Field(default_factory=list, description="What all or most drafts agree on.")
    contradictions: list[Contradiction] = Field(default_factory=list, description="Each disputed topic, every stance.")
    partial_coverage: list[Coverage] = Field(default_factory=list, description="Points only some drafts cover.")
    unique_insights: list[Insight] = Field(default_factory=list, description="Points only one draft makes.")
    blind_spots: list[str] = Field(default_factory=list, description="What no draft addressed.")

    def is_empty(self) -> bool:
        return not (self.consensus or self.contradictions or self.partial_coverage or self.unique_insights
                    or self.blind_spots)

    def with_models(self, model_of: dict[str, str]) -> Analysis:
        """Labels mapped back to the models that wrote the drafts."""
        return Analysis(
            consensus=self.consensus,
            contradictions=[c.model_copy(update={"stances": [s.model_copy(update={"model": model_of.get(s.label)})
                                                             for s in c.stances]}) for c in self.contradictions],
            partial_coverage=[p.model_copy(update={"models": [model_of[x] for x in p.labels if x in model_of]})
                              for p in self.partial_coverage],
            unique_insights=[u.model_copy(update={"model": model_of.get(u.label)}) for u in self.unique_insights],
            blind_spots=self.blind_spots,
        )


class CriticalStep(BaseModel):
    stage: Literal["draft", "review", "synthesis"]
    model: str
    latency_s: float


class Totals(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(
        default=None, description="Sum of the calls whose cost is known; null when none is known."
    )
    cost_complete: bool = Field(default=True, description="False when some call's cost is unknown.")
    unknown_cost_calls: list[str] = Field(default_factory=list)
    wall_s: float = 0.0
    draft_s: float = 0.0
    review_s: float = 0.0
    synthesis_s: float = 0.0
    critical_path: list[CriticalStep] = Field(default_factory=list)
    critical_path_s: float = 0.0


class Schedule(BaseModel):
    """The run's time plan and what it decided, so a user can see why a draft was cut or a stage skipped.
    Times are seconds from the start of the run."""

    deadline_s: float
    synthesis_start_by_s: float | None = Field(default=None,
                                               description="The latest start the plan left the synthesis.")
    quorum_at_s: float | None = None
    drafts_cut_at_s: float | None = Field(default=None, description="When drafting stopped waiting, if it cut a draft.")
    predicted_s: dict[str, float] = Field(default_factory=dict, description="Predicted seconds per stage and model.")
    decisions: list[str] = Field(default_factory=list)


class FusionResult(BaseModel):
    run_id: str
    ensemble: str
    question: str
    context: str | None = None
    answer: str | None = Field(default=None, description="The fused answer; null for a compare-only run.")
    answer_source: AnswerSource = "none"
    drafts: list[Draft]
    review: Stage
    synthesis: Stage
    agreement: float | None = Field(default=None, description="Mean pairwise word overlap of the ok drafts.")
    analysis: Analysis | None = Field(default=None, description="The reviewer's comparison of the drafts.")
    totals: Totals
    max_cost_usd: float | None = Field(default=None, description="The run's spending cap, if one was set.")
    estimated_cost_usd: float | None = Field(default=None, description="The most it could cost, estimated first.")
    schedule: Schedule | None = None
    degraded: bool = False
    degraded_reasons: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list, description="Web sources the drafts read; [n] in the answer.")
    citation_flags: list[str] = Field(default_factory=list, description="Citations in the answer no draft read.")

    def ok_drafts(self) -> list[Draft]:
        return [d for d in self.drafts if d.status == "ok"]

    def best_draft(self) -> Draft | None:
        ok = self.ok_drafts()
        return max(ok, key=lambda d: (d.weight, d.agreement or 0.0)) if ok else None
