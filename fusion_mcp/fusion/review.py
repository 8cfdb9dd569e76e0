"""The review stage: one model scores the anonymized drafts; its reply becomes scores by label."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..config.ensembles import ModelRole
from ..errors import ProviderError
from .accounting import cost_of_failure
from .calls import ModelCaller
from .requests import review_request
from .result import Draft, Scores, Stage
from .review_parser import ReviewParseError, parse_review
from .timing import TimePlan


@dataclass
class ReviewOutcome:
    stage: Stage
    scores: dict[str, Scores] = field(default_factory=dict)

    @property
    def degradation(self) -> str | None:
        """What the run lost through this review, for `degraded_reasons`."""
        who = f"review ({self.stage.model})" if self.stage.model else "review"
        if self.stage.status in ("failed", "timeout", "unparseable", "skipped"):
            return f"{who} {self.stage.status}: {self.stage.error}; drafts weighted by their configured weights"
        if self.stage.status == "partial":
            return f"{who} partial: {self.stage.error}; those drafts got the mean score"
        return None


def failed_stage(role: ModelRole, exc: ProviderError, started: float) -> Stage:
    status = "timeout" if exc.kind == "timeout" else "failed"
    return Stage(model=role.ref, status=status, error=exc.reason, cost_usd=cost_of_failure(role),
                 latency_s=round(time.perf_counter() - started, 3))


async def review(call: ModelCaller, role: ModelRole | None, question: str, context: str | None,
                 ok: list[Draft], nonce: str, plan: TimePlan) -> ReviewOutcome:
    if role is None:
        return ReviewOutcome(Stage(status="not_configured"))
    until = plan.review_until()
    if until is None:
        return ReviewOutcome(Stage(model=role.ref, status="skipped", error="no time left in the deadline"))
    by_label = sorted(ok, key=lambda d: d.label)
    labels = [d.label for d in by_label]
    t0 = time.perf_counter()
    try:
        c = await call(role, review_request(role, question, context, by_label, nonce), timeout_s=plan.left(until))
    except ProviderError as exc:
        return ReviewOutcome(failed_stage(role, exc, t0))
    stage = Stage(model=role.ref, status="ok", latency_s=round(c.latency_s, 3), input_tokens=c.usage.input_tokens,
                  output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached)
    try:
        scores = parse_review(c.text, labels)
    except ReviewParseError as exc:
        return ReviewOutcome(stage.model_copy(update={"status": "unparseable", "error": str(exc)}))
    missing = [label for label in labels if label not in scores]
    if missing:
        stage = stage.model_copy(update={"status": "partial", "error": f"no scores for {', '.join(missing)}"})
    return ReviewOutcome(stage, scores)
