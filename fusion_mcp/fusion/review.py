"""The review stage: one model scores the anonymized drafts and compares them, in one call; its reply
becomes scores by label and an analysis whose labels are mapped back to models."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from ..config.ensembles import ModelRole
from ..errors import ProviderError
from ..providers import Completion
from .accounting import cost_of_failure
from .calls import ModelCaller
from .estimate import prompt_tokens
from .requests import draft_request, review_request
from .result import Analysis, Draft, Scores, Stage, StageStatus
from .review_parser import ReviewParseError, read_review
from .stragglers import hung, prompt_scale, unless_hung
from .timing import TimePlan
from .tool_loop import call_with_tools
from .watch import CallWatch

if TYPE_CHECKING:
    from ..web.tools import WebTools


@dataclass
class ReviewOutcome:
    stage: Stage
    scores: dict[str, Scores] = field(default_factory=dict)
    analysis: Analysis | None = None

    @property
    def degradation(self) -> str | None:
        """What the run lost through this review, for `degraded_reasons`."""
        who = f"review ({self.stage.model})" if self.stage.model else "review"
        if self.stage.status in ("failed", "timeout", "unparseable", "skipped"):
            return f"{who} {self.stage.status}: {self.stage.error}; drafts weighted by their configured weights"
        if self.stage.status == "partial":
            return f"{who} partial: {self.stage.error}; those drafts got the mean score"
        return None


def answered_stage(role: ModelRole, c: Completion) -> Stage:
    return Stage(model=role.ref, status="ok", latency_s=round(c.latency_s, 3), ttft_s=c.ttft_s,
                 output_tokens_per_s=c.output_tokens_per_s, input_tokens=c.usage.input_tokens,
                 output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached, truncated=c.truncated)


def failed_stage(role: ModelRole, exc: ProviderError, started: float) -> Stage:
    status: StageStatus = "timeout" if exc.kind == "timeout" else "failed"
    return Stage(model=role.ref, status=status, error=exc.reason, cost_usd=cost_of_failure(role),
                 latency_s=round(time.perf_counter() - started, 3))


async def review(call: ModelCaller, role: ModelRole | None, question: str, context: str | None,
                 ok: list[Draft], nonce: str, plan: TimePlan, *, analysis: bool = True,
                 tools: WebTools | None = None, max_tool_calls: int = 0, criteria: str | None = None,
                 prompts: Mapping[str, str] | None = None) -> ReviewOutcome:
    if role is None:
        return ReviewOutcome(Stage(status="not_configured"))
    until, why = plan.review_until(role, len(ok))
    plan.decide(f"review {'runs' if until is not None else 'skipped'}: {why}")
    if until is None:
        return ReviewOutcome(Stage(model=role.ref, status="skipped", error=why))
    by_label = sorted(ok, key=lambda d: d.label)
    labels = [d.label for d in by_label]
    t0 = time.perf_counter()
    watch = CallWatch(plan.clock)
    request = review_request(role, question, context, by_label, nonce, analysis=analysis, criteria=criteria,
                             prompts=prompts)
    # It reads every draft before its first byte: expected that much later than a draft's first byte.
    scale = prompt_scale(prompt_tokens(request), [prompt_tokens(draft_request(role, question, context, prompts))])
    try:
        with_tools = tools if analysis else None
        looped = await unless_hung(plan, role, watch, lambda: call_with_tools(
            call, role, request, with_tools, stage="review", timeout_s=plan.left(until), max_calls=max_tool_calls,
            sink=watch), enabled=not role.tools, scale=scale)
    except ProviderError as exc:
        if hung(plan, role, watch, plan.now(), "review", scale):
            plan.decide(f"review ({role.ref}) given up: {exc.reason}")
        return ReviewOutcome(failed_stage(role, exc, t0))
    c = looped.completion
    stage = answered_stage(role, c).model_copy(update={"tool_calls": looped.tool_calls, "tool_log": looped.tool_log})
    try:
        # Off the event loop: a parse never delays another client's request, whatever the reply.
        reading = await anyio.to_thread.run_sync(read_review, c.text, labels)
    except ReviewParseError as exc:
        return ReviewOutcome(stage.model_copy(update={"status": "unparseable", "error": str(exc)}))
    missing = [label for label in labels if label not in reading.scores]
    notes = [f"no scores for {', '.join(missing)}"] if missing else []
    if reading.repaired:
        cap = role.max_tokens or role.provider.default_max_tokens
        limit = f" ({cap} tokens)" if cap else ""
        notes.append(f"the reply was cut off{limit}; its complete entries were kept (raise the reviewer's max_tokens)")
    stage = stage.model_copy(update={"status": "partial" if missing else "ok", "error": "; ".join(notes) or None,
                                     "truncated": c.truncated or reading.repaired})
    model_of = {d.label: d.model for d in by_label}
    found = reading.analysis.with_models(model_of) if reading.analysis else None
    return ReviewOutcome(stage, reading.scores, found)
