"""Judging a call still out by its evidence, not by priors alone.

Once the quorum is in, each draft still out is asked how long it is worth waiting for:

- queued for a slot on a model that is rate-limiting (a 429 on it, or on its model lately): only
  the grace, like any straggler; queued for a busy provider that is not refusing: the time the
  plan can spare, as it is not a slow model;
- writing: predicted from the rate it is writing at right now;
- sent, no first byte by HUNG_TTFT_FACTOR times its expected time to first token: hung;
- otherwise: predicted from its measured pace, stretched by the load the run observes (a loaded
  upstream is slow, not hung); a model the run has no measured pace for is expected to behave like
  the run's drafts that came in (the run's evidence), and a prior is used only when there is none.

The same test tells a reviewer that has written nothing from one that is merely slow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from ..config.ensembles import ModelRole
from ..errors import ProviderError, ProviderTimeoutError
from .timing import SAFETY, TimePlan
from .watch import CallWatch

HUNG_TTFT_FACTOR = 3.0  # no first byte by this many times the expected time to first token: hung
HUNG_MIN_S = {"draft": 2.0, "review": 4.0}  # never hung sooner (jitter; a review reads every draft first)
MAX_PROMPT_SCALE = 4.0  # at most this much later a first byte is expected for a longer prompt (prompt_scale)
OVERRUN = 0.25  # a draft already past its expected length is given this share of it again
RECHECK_S = 0.25  # how often a call still out is judged again between events
T = TypeVar("T")


@dataclass
class Verdict:
    """How long a call still out is worth waiting for, and the evidence why."""

    finish: float | None  # expected finish on the plan's clock; None: unknown, hung, or rate-limited
    hold: float | None  # the finish with the safety margin: how long it is worth waiting for it
    why: str
    kind: str  # rate_limited, queued, hung, writing, expected, unknown: a new kind is a new decision

    @property
    def holds(self) -> tuple[float, float] | None:
        return None if self.finish is None or self.hold is None else (self.finish, self.hold)


def expected_ttft(plan: TimePlan, role: ModelRole) -> float | None:
    """Seconds from being sent to the first byte: measured pace × load, else what the run's own calls
    showed (the slowest), else the prior × load."""
    pace = plan.pace(role)
    load = plan.evidence.load()
    if pace is not None and pace.samples > 0:
        return pace.ttft_s * load
    if plan.evidence.ttfts:
        return max(plan.evidence.ttfts)
    return None if pace is None else pace.ttft_s * load


def expected_seconds(plan: TimePlan, role: ModelRole, stage: str, n_drafts: int = 0) -> float | None:
    """Seconds from being sent to the end, in the same order of evidence as expected_ttft."""
    pace = plan.pace(role)
    if pace is not None and pace.samples > 0:
        return plan.predict(role, stage, n_drafts)
    if plan.evidence.durations:
        return max(plan.evidence.durations)
    return plan.predict(role, stage, n_drafts)


def prompt_scale(prompt_tokens: int, draft_prompt_tokens: list[int]) -> float:
    """How much later than a draft's a first byte is expected for a longer prompt: a model reads its
    prompt before its first byte, and a review reads every draft (a local model on a busy CPU takes
    seconds to). The square root of the length ratio, 1 to MAX_PROMPT_SCALE: a hosted model reads fast
    and its first byte is mostly latency, a local one reads in time that grows with the prompt."""
    known = sorted(t for t in draft_prompt_tokens if t > 0)
    if not known:
        return 1.0
    return min(MAX_PROMPT_SCALE, max(1.0, (prompt_tokens / known[len(known) // 2]) ** 0.5))


def hung_after(plan: TimePlan, role: ModelRole, stage: str = "draft", scale: float = 1.0) -> float | None:
    """Seconds after being sent with no first byte when a streaming call counts as hung; `scale`: how
    much longer its prompt is than the drafts' (prompt_scale)."""
    ttft = expected_ttft(plan, role)
    return None if ttft is None else max(HUNG_MIN_S.get(stage, 2.0), HUNG_TTFT_FACTOR * ttft * scale)


def hung(plan: TimePlan, role: ModelRole, watch: CallWatch, now: float, stage: str = "draft",
         scale: float = 1.0) -> str | None:
    """Why a streaming call sent with no first byte is hung, or None while it is not (yet)."""
    if watch.sent_at is None or not watch.streaming or watch.first_byte_at is not None:
        return None
    after = hung_after(plan, role, stage, scale)
    waited = now - watch.sent_at
    if after is None or waited <= after:
        return None
    ttft = (expected_ttft(plan, role) or 0.0) * scale
    return f"no first byte {waited:.1f} s after it was sent (expected by {ttft:.1f} s): treated as hung"


def judge(plan: TimePlan, role: ModelRole, watch: CallWatch, now: float, stage: str = "draft") -> Verdict:
    """The verdict on one call still out, at `now`."""
    if watch.sent_at is None:
        if watch.behind_rate_limit:
            return Verdict(None, None, "queued behind a rate limit (429): it gets the grace like any straggler",
                           "rate_limited")
        latest = plan.drafts_latest
        return Verdict(latest, latest, "waiting for a slot on a busy provider: not a slow model", "queued")
    if role.tools:  # a tool loop: turns and tools come between its bytes; judged by its prediction
        seconds = plan.predict(role, stage)
        if seconds is None:
            return Verdict(None, None, "pace unknown and nothing observed yet", "unknown")
        return Verdict(watch.asked_at + seconds, watch.asked_at + seconds * SAFETY,
                       f"a tool loop expected to take {seconds:.1f} s", "expected")
    why_hung = hung(plan, role, watch, now, stage)
    if why_hung:
        return Verdict(None, None, why_hung, "hung")
    if watch.first_byte_at is not None:
        pace = plan.pace(role)
        rate = watch.rate() or (pace.tokens_per_s / plan.evidence.load() if pace else None)
        if rate:
            expected = plan.expected_tokens(role, stage)
            left = max(expected - watch.tokens, OVERRUN * watch.tokens)
            why = f"writing at {rate:.0f} tokens/s, {watch.tokens:.0f} of ~{expected:.0f} tokens written"
            return Verdict(now + left / rate, now + left / rate * SAFETY, why, "writing")
    seconds = expected_seconds(plan, role, stage)
    if seconds is None:
        return Verdict(None, None, "pace unknown and nothing observed yet", "unknown")
    hold = watch.sent_at + seconds * SAFETY
    after = hung_after(plan, role, stage) if watch.streaming and watch.first_byte_at is None else None
    if after is not None:  # it may show its first byte until it would count as hung
        hold = max(hold, watch.sent_at + after)
    return Verdict(watch.sent_at + seconds, hold, f"expected to take {seconds:.1f} s from being sent", "expected")


async def unless_hung(plan: TimePlan, role: ModelRole, watch: CallWatch, call: Callable[[], Awaitable[T]],
                      stage: str = "review", *, enabled: bool = True, scale: float = 1.0) -> T:
    """Run `call` (which streams into `watch`), but give up on it once it is hung (see `hung`), with a
    ProviderTimeoutError that says so: a reviewer that writes nothing costs seconds, not its share.
    Not `enabled` (a tool loop, whose turns and tools come between its bytes): just `call`."""
    if not enabled:
        return await call()
    result: list[T] = []
    failed: list[ProviderError] = []
    why: list[str] = []
    async with anyio.create_task_group() as tg:
        async def watchdog() -> None:
            while True:
                await plan.clock.sleep(RECHECK_S)
                found = hung(plan, role, watch, plan.clock.now(), stage, scale)
                if found:
                    why.append(found)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watchdog)
        try:
            result.append(await call())
        except ProviderError as exc:  # raised here, not as an exception group
            failed.append(exc)
        tg.cancel_scope.cancel()
    if result:
        return result[0]
    if failed:
        raise failed[0]
    raise ProviderTimeoutError(role.provider.name, role.model_id, why[0] if why else "cut")
