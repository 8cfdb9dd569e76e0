"""The draft stage: every drafter at once, until all are in, or the quorum and the draft budget."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from ..config.ensembles import Ensemble, ModelRole
from ..errors import ProviderError
from ..providers.base import TextSink
from .accounting import cost_of_failure
from .calls import ModelCaller
from .events import Progress
from .requests import draft_request
from .result import Citation, Draft
from .timing import TimePlan
from .tool_loop import call_with_tools

if TYPE_CHECKING:
    from ..web.tools import WebTools


def draft_labels(n: int, rng: random.Random) -> list[str]:
    """Anonymous labels (A, B, ...), shuffled so their order says nothing about the file's."""
    labels = list(string.ascii_uppercase[:n]) if n <= 26 else [f"D{i + 1}" for i in range(n)]
    rng.shuffle(labels)
    return labels


def _failed(label: str, role: ModelRole, status: str, error: str, latency_s: float) -> Draft:
    return Draft(label=label, model=role.ref, status=status, error=error,  # type: ignore[arg-type]
                 configured_weight=role.weight, latency_s=round(latency_s, 3), cost_usd=cost_of_failure(role))


async def draft_all(call: ModelCaller, ensemble: Ensemble, question: str, context: str | None,
                    labels: list[str], plan: TimePlan, progress: Progress,
                    tools: WebTools | None = None) -> list[Draft]:
    """One draft per drafter, in the ensemble's order; a drafter the plan cut off is a timeout."""
    drafters = ensemble.drafters
    drafts: list[Draft | None] = [None] * len(drafters)
    began: list[float] = [anyio.current_time()] * len(drafters)
    sinks = [TextSink() for _ in drafters]  # `sent` once a draft's call got its slot and went out
    changed = [anyio.Event()]
    reported = [0]  # drafts whose progress event has gone out
    started = time.perf_counter()

    async def one(i: int, role: ModelRole) -> None:
        t0 = time.perf_counter()
        began[i] = anyio.current_time()
        try:
            max_calls = ensemble.web.max_tool_calls if ensemble.web else 0
            request = draft_request(role, question, context, ensemble.prompts)
            looped = await call_with_tools(call, role, request, tools, stage="draft",
                                           timeout_s=max(0.01, plan.left(plan.quorum_wait_until())),
                                           max_calls=max_calls, sample=i, sink=sinks[i])
            c = looped.completion
            d = Draft(label=labels[i], model=role.ref, status="ok", text=c.text, configured_weight=role.weight,
                      latency_s=round(c.latency_s, 3), ttft_s=c.ttft_s, output_tokens_per_s=c.output_tokens_per_s,
                      input_tokens=c.usage.input_tokens, output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd,
                      cached=c.cached, truncated=c.truncated,
                      citations=[Citation(**x.model_dump()) for x in looped.citations],
                      tool_calls=looped.tool_calls, tool_log=looped.tool_log)
            if c.usage.output_tokens:
                plan.draft_tokens.append(c.usage.output_tokens)
        except ProviderError as exc:
            d = _failed(labels[i], role, exc.kind, exc.reason, time.perf_counter() - t0)
        drafts[i] = d
        # Report before waking the waiter, and count a draft as finished only once reported: the
        # waiter cancels this task group when all are finished, which would otherwise drop a
        # progress notification still being sent.
        await progress.step("draft", f"draft {d.label} ({d.model}): {d.status}", model=d.model,
                            status=d.status, latency_s=d.latency_s)
        reported[0] += 1
        changed[0].set()

    def finished() -> bool:
        return reported[0] == len(drafters)

    def n_ok() -> int:
        return sum(1 for d in drafts if d is not None and d.status == "ok")

    async def wait_until(condition: Callable[[], bool], until: Callable[[], float]) -> None:
        while not condition() and plan.left(until()) > 0:
            changed[0] = anyio.Event()
            with anyio.move_on_after(plan.left(until())):
                await changed[0].wait()

    async with anyio.create_task_group() as tg:
        for i, role in enumerate(drafters):
            tg.start_soon(one, i, role)
        await wait_until(lambda: finished() or n_ok() >= ensemble.min_drafts, plan.quorum_wait_until)
        if not finished():
            if n_ok() >= ensemble.min_drafts:
                quorum_at = anyio.current_time()
                pending = [(role, began[i]) for i, role in enumerate(drafters) if drafts[i] is None]
                cut = plan.straggler_cut(quorum_at, pending, n_ok())

                def until() -> float:
                    # a draft still waiting for a slot (a busy provider) is not a slow model: it may
                    # use all the time the plan can spare, not just the grace
                    queued = any(drafts[i] is None and not sinks[i].sent for i in range(len(drafters)))
                    return plan.drafts_latest if queued else cut

                await wait_until(finished, until)
            if not finished():
                plan.schedule.drafts_cut_at_s = plan.now_s()
                plan.decide(f"stopped waiting for {len(drafters) - reported[0]} draft(s) with {n_ok()} in "
                            f"(quorum {ensemble.min_drafts}), to leave the synthesis its time")
        tg.cancel_scope.cancel()

    elapsed = time.perf_counter() - started
    out: list[Draft] = []
    for i, role in enumerate(drafters):
        d = drafts[i]
        if d is None:
            d = _failed(labels[i], role, "timeout", f"cut after {elapsed:.1f} s by the time plan of a "
                        f"{plan.deadline_s:g} s deadline (see the result's schedule)", elapsed)
            progress.skip()
        out.append(d)
    return out
