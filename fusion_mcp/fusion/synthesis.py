"""The synthesis stage: one model writes the answer from the drafts, heaviest first."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..config.ensembles import ModelRole
from ..errors import ProviderError
from .calls import ModelCaller
from .requests import synthesis_request
from .result import Analysis, Draft, Stage
from .review import failed_stage
from .timing import TimePlan


@dataclass
class SynthesisOutcome:
    stage: Stage
    text: str | None = None


async def synthesize(call: ModelCaller, role: ModelRole | None, question: str, context: str | None,
                     ok: list[Draft], nonce: str, plan: TimePlan, analysis: Analysis | None = None) -> SynthesisOutcome:
    if role is None:
        return SynthesisOutcome(Stage(status="not_configured"))
    until = plan.synthesis_until()
    if until is None:
        return SynthesisOutcome(Stage(model=role.ref, status="skipped", error="no time left in the deadline"))
    ranked = sorted(ok, key=lambda d: -d.weight)
    t0 = time.perf_counter()
    try:
        c = await call(role, synthesis_request(role, question, context, ranked, nonce, analysis), timeout_s=plan.left(until))
    except ProviderError as exc:
        return SynthesisOutcome(failed_stage(role, exc, t0))
    stage = Stage(model=role.ref, status="ok", latency_s=round(c.latency_s, 3), input_tokens=c.usage.input_tokens,
                  output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached, truncated=c.truncated)
    return SynthesisOutcome(stage, c.text)
