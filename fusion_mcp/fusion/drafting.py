"""The draft stage: every drafter at once, until all are in, or the quorum and the draft budget."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from ..clock import wait_event
from ..config.ensembles import Ensemble, ModelRole
from ..errors import ProviderError
from .accounting import cost_of_failure
from .calls import ModelCaller
from .events import Progress
from .requests import draft_request
from .result import Citation, Draft
from .stragglers import RECHECK_S, judge
from .timing import TimePlan
from .tool_loop import call_with_tools
from .watch import CallWatch

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


class DraftRound:
    """One draft per drafter, all at once, until every draft is in, or the quorum plus what the time
    plan gives the drafts still out (judged again on each event and every RECHECK_S by their evidence,
    stragglers.py); a draft the plan cut off is a timeout."""

    def __init__(self, call: ModelCaller, ensemble: Ensemble, question: str, context: str | None,
                 labels: list[str], plan: TimePlan, progress: Progress, tools: WebTools | None = None) -> None:
        self.call, self.ensemble, self.question, self.context = call, ensemble, question, context
        self.labels, self.plan, self.progress, self.tools = labels, plan, progress, tools
        self.clock = plan.clock
        self.roles = ensemble.drafters
        self.drafts: list[Draft | None] = [None] * len(self.roles)
        self.watches = [CallWatch(self.clock) for _ in self.roles]
        self.reported = 0  # drafts whose progress event has gone out
        self.changed = anyio.Event()
        self.verdicts: dict[int, str] = {}  # the kind of the last verdict recorded per draft still out
        self.stopped_at_quorum = False
        self.started = self.clock.now()

    def finished(self) -> bool:
        return self.reported == len(self.roles)

    def n_ok(self) -> int:
        return sum(1 for d in self.drafts if d is not None and d.status == "ok")

    def quorum(self) -> bool:
        return self.n_ok() >= self.ensemble.min_drafts

    async def run(self) -> list[Draft]:
        async with anyio.create_task_group() as tg:
            for i, role in enumerate(self.roles):
                tg.start_soon(self._one, i, role)
            await self._wait(lambda: self.finished() or self.quorum(), self.plan.quorum_wait_until)
            if not self.finished():
                if self.quorum():
                    await self._stragglers(self.clock.now())
                if not self.finished():
                    self.plan.schedule.drafts_cut_at_s = self.plan.now_s()
                    self.plan.decide(f"stopped waiting for {len(self.roles) - self.reported} draft(s) with "
                                     f"{self.n_ok()} in (quorum {self.ensemble.min_drafts}), "
                                     "to leave the synthesis its time")
            tg.cancel_scope.cancel()
        return self._results()

    async def _one(self, i: int, role: ModelRole) -> None:
        watch = self.watches[i]
        measured = self.plan.pace(role)
        predicted = (self.plan.book.predict(role.ref, self.plan.expected_tokens(role, "draft"))
                     if measured is not None and measured.samples > 0 else None)
        try:
            max_calls = self.ensemble.web.max_tool_calls if self.ensemble.web else 0
            request = draft_request(role, self.question, self.context, self.ensemble.prompts)
            looped = await call_with_tools(self.call, role, request, self.tools, stage="draft",
                                           timeout_s=max(0.01, self.plan.left(self.plan.quorum_wait_until())),
                                           max_calls=max_calls, sample=i, sink=watch)
            c = looped.completion
            d = Draft(label=self.labels[i], model=role.ref, status="ok", text=c.text, configured_weight=role.weight,
                      latency_s=round(c.latency_s, 3), ttft_s=c.ttft_s, output_tokens_per_s=c.output_tokens_per_s,
                      input_tokens=c.usage.input_tokens, output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd,
                      cached=c.cached, truncated=c.truncated,
                      citations=[Citation(**x.model_dump()) for x in looped.citations],
                      tool_calls=looped.tool_calls, tool_log=looped.tool_log)
            if c.usage.output_tokens:
                self.plan.draft_tokens.append(c.usage.output_tokens)
            if not c.cached and watch.sent_at is not None and not role.tools:
                self.plan.observed(watch.sent_at, watch.first_byte_at, self.clock.now(), predicted)
        except ProviderError as exc:
            d = _failed(self.labels[i], role, exc.kind, exc.reason, self.clock.now() - watch.asked_at)
        self.drafts[i] = d
        # Report before waking the waiter, and count a draft as finished only once reported: the
        # waiter cancels this task group when all are finished, which would otherwise drop a
        # progress notification still being sent.
        await self.progress.step("draft", f"draft {d.label} ({d.model}): {d.status}", model=d.model,
                                 status=d.status, latency_s=d.latency_s)
        self.reported += 1
        self.changed.set()

    async def _wait(self, condition: Callable[[], bool], until: Callable[[], float],
                    recheck_s: float | None = None) -> None:
        """Until `condition` holds or the clock passes `until()` (read again after every event, and
        every `recheck_s` when given)."""
        while not condition() and self.plan.left(until()) > 0:
            self.changed = anyio.Event()
            end = until() if recheck_s is None else min(until(), self.clock.now() + recheck_s)
            await wait_event(self.clock, self.changed, end)

    async def _stragglers(self, quorum_at: float) -> None:
        """Wait for the drafts still out as long as their evidence says they are worth it."""
        self.plan.drafts_window(quorum_at, len(self.roles))

        def cut() -> float:
            now = self.clock.now()
            holds = []
            for i, role in enumerate(self.roles):
                if self.drafts[i] is not None:
                    continue
                verdict = judge(self.plan, role, self.watches[i], now)
                holds.append(verdict.holds)
                if self.verdicts.get(i) != verdict.kind:
                    self.verdicts[i] = verdict.kind
                    self.plan.decide(f"draft {self.labels[i]} ({role.ref}): {verdict.why}")
            at = self.plan.straggler_cut(quorum_at, holds)
            if at <= quorum_at and holds and not self.stopped_at_quorum:
                self.stopped_at_quorum = True
                self.plan.decide("no draft still out is expected to finish in time: drafting stops at the quorum")
            return at

        await self._wait(self.finished, cut, RECHECK_S)

    def _results(self) -> list[Draft]:
        elapsed = self.clock.now() - self.started
        out: list[Draft] = []
        for i, role in enumerate(self.roles):
            d = self.drafts[i]
            if d is None:
                d = _failed(self.labels[i], role, "timeout", f"cut after {elapsed:.1f} s by the time plan of a "
                            f"{self.plan.deadline_s:g} s deadline (see the result's schedule)", elapsed)
                self.progress.skip()
            out.append(d)
        return out


async def draft_all(call: ModelCaller, ensemble: Ensemble, question: str, context: str | None,
                    labels: list[str], plan: TimePlan, progress: Progress,
                    tools: WebTools | None = None) -> list[Draft]:
    """One draft per drafter, in the ensemble's order (see DraftRound)."""
    return await DraftRound(call, ensemble, question, context, labels, plan, progress, tools).run()
