"""The synthesis stage: one model writes the answer from the drafts, heaviest first.

It streams: `on_text` sees the answer as it is written, and at the deadline the text written so far is
the answer, marked truncated, rather than nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.ensembles import ModelRole
from ..errors import ProviderError, ProviderTimeoutError
from ..providers.base import TextSink
from ..redaction import redact
from .calls import ModelCaller
from .reply_cap import reply_cap
from .requests import synthesis_request
from .result import Analysis, Draft, Source, Stage
from .review import answered_stage, failed_stage
from .timing import TimePlan
from .tool_loop import call_with_tools

if TYPE_CHECKING:
    from ..web.tools import WebTools


@dataclass
class SynthesisOutcome:
    stage: Stage
    text: str | None = None


async def synthesize(call: ModelCaller, role: ModelRole | None, question: str, context: str | None,
                     ok: list[Draft], nonce: str, plan: TimePlan,
                     on_text: Callable[[str], None] | None = None, analysis: Analysis | None = None,
                     sources: list[Source] | None = None, tools: WebTools | None = None,
                     max_tool_calls: int = 0) -> SynthesisOutcome:
    if role is None:
        return SynthesisOutcome(Stage(status="not_configured"))
    until = plan.synthesis_until()
    if until is None:
        return SynthesisOutcome(Stage(model=role.ref, status="skipped", error="no time left in the deadline"))
    ranked = sorted(ok, key=lambda d: -d.weight)
    sink = TextSink(on_text)
    t0 = time.perf_counter()
    try:
        request = synthesis_request(role, question, context, ranked, nonce, analysis, sources)
        looped = await call_with_tools(call, role, request, tools, stage="synthesis", timeout_s=plan.left(until),
                                       max_calls=max_tool_calls, sink=sink)
        c = looped.completion
    except ProviderTimeoutError as exc:
        if not sink.text.strip():
            return SynthesisOutcome(failed_stage(role, exc, t0))
        stage = failed_stage(role, exc, t0).model_copy(update={
            "status": "truncated",
            "error": f"cut at the deadline after {len(sink.text)} characters: the answer is what was written by then",
        })
        # It left the provider without passing calls.py: redacted here, then cut to the reply cap.
        kept = redact(sink.text)
        return SynthesisOutcome(stage, kept[:reply_cap(role, request)])
    except ProviderError as exc:
        return SynthesisOutcome(failed_stage(role, exc, t0))
    return SynthesisOutcome(answered_stage(role, c), c.text)
