"""How many calls a provider gets at once: a limit that finds what the upstream can take.

Additive increase, multiplicative decrease (AIMD, as TCP does): the limit starts at INITIAL and
doubles each round trip while the upstream keeps up (slow start: up to twice the most calls seen in
flight, so that the next burst as large runs at once; a streamed call counts when the upstream takes it
on, at its reply's headers, so the round trip is the time to admission, not the whole answer), then
grows by one per round trip;
a 429, or a model's recent answer time rising past LATENCY_TOLERANCE times its best, halves it, at most
once per round trip. It never passes the configured ceiling (`max_concurrency`) nor falls under one.

Waiters queue here, first come first served, one wake-up per free slot: a burst of hundreds of calls
costs no scan of every waiter on every release, and none of them queue inside the HTTP pool.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from ..clock import REAL_CLOCK, Clock
from ..errors import RateLimitedError

INITIAL = 16
LATENCY_TOLERANCE = 2.0
RECENT = 0.3  # weight of a new answer time in the moving average
BEST_DRIFT = 0.05  # per second
MIN_SAMPLES = 4  # a model's answer times say nothing about load before this many
RATE_LIMITED_MEMORY_S = 30.0  # a model that answered 429 this recently is "rate-limiting"


@dataclass
class SlotUse:
    """Filled in by the holder of a slot: how long the upstream itself took, and `admitted()` when the
    upstream took the call on (a streamed reply's headers, or its first token)."""

    limit: AdaptiveLimit
    latency_s: float | None = None
    grew: bool = False  # this call has raised the limit in slow start already

    def admitted(self) -> None:
        """The upstream took the call on: in slow start the limit grows now, not when the answer ends. A
        model thinks and writes for many seconds after that; an upstream without room says so with a
        429 at once, before its headers say 200."""
        if not self.grew:
            self.grew = self.limit.admitted()


@dataclass
class _Latency:
    """A model's answer time: recent (a short moving average) against its best recent (the unloaded
    time, which drifts up by BEST_DRIFT per second so that an upstream slower for everyone becomes
    the new normal instead of a reason to cut forever)."""

    recent: float
    best: float
    at: float
    samples: int = 1


class AdaptiveLimit:
    def __init__(self, ceiling: int, *, initial: int = INITIAL, clock: Clock = REAL_CLOCK) -> None:
        self.clock = clock
        self.ceiling = max(1, ceiling)
        self.limit = float(min(self.ceiling, max(1, initial)))
        self.in_flight = 0
        self.slow_start = True
        self.peak = 0
        self.cuts = 0
        self._waiters: deque[anyio.Event] = deque()
        self._last_cut = -math.inf
        self._last_429 = -math.inf
        self._latency: dict[str, _Latency] = {}

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _grant(self) -> None:
        while self._waiters and self.in_flight < self.current:
            self.in_flight += 1
            self._waiters.popleft().set()
        self.peak = max(self.peak, self.in_flight)

    async def _acquire(self) -> None:
        if not self._waiters and self.in_flight < self.current:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return
        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:  # cancelled (a deadline): give the slot on if it came meanwhile
            if granted.is_set():
                self.in_flight -= 1
                self._grant()
            else:
                self._waiters.remove(granted)
            raise

    @asynccontextmanager
    async def slot(self, model: str = "") -> AsyncIterator[SlotUse]:
        """Hold one slot; the call's outcome (answer, 429, other failure) adjusts the limit."""
        await self._acquire()
        use = SlotUse(self)
        busy = False
        try:
            yield use
        except RateLimitedError:
            self._last_429 = self.clock.now()
            self._cut()
            raise
        else:
            busy = self._limited()
            if use.latency_s is not None:
                self._answered(model, use.latency_s, busy, grown=use.grew)
        finally:
            self.in_flight -= 1
            self._grant()

    def _limited(self) -> bool:
        """Whether the limit is what holds calls back, so that an answer may raise it: calls are waiting,
        or every slot is taken. In slow start also while the limit is under twice the most calls ever in
        flight (as Linux's TCP grows its window in slow start: tcp_is_cwnd_limited): otherwise the limit
        creeps up to a burst's size from below, and every burst as large as the last pays a second round
        for the few calls over it."""
        if self.in_flight >= self.current or self._waiters:
            return True
        return self.slow_start and self.current < 2 * self.peak

    def rate_limiting(self) -> bool:
        """Whether the upstream answered 429 within RATE_LIMITED_MEMORY_S: a call waiting here then
        waits behind a rate limit, not for a slow model."""
        return self.clock.now() - self._last_429 < RATE_LIMITED_MEMORY_S

    def admitted(self) -> bool:
        """The upstream took a call on: in slow start, and limited, the limit grows by one (whether it did)."""
        if self.slow_start and self._limited():
            self.limit = min(float(self.ceiling), self.limit + 1.0)
            self._grant()  # the slot is free now: a waiting call goes out
            return True
        return False

    def _answered(self, model: str, latency_s: float, busy: bool, *, grown: bool = False) -> None:
        now = self.clock.now()
        seen = self._latency.get(model)
        if seen is None:
            seen = self._latency[model] = _Latency(recent=latency_s, best=latency_s, at=now)
        else:
            seen.samples += 1
            seen.recent += RECENT * (latency_s - seen.recent)
            seen.best = min(seen.recent, seen.best * (1 + BEST_DRIFT * (now - seen.at)))
            seen.at = now
        if seen.samples >= MIN_SAMPLES and seen.recent > LATENCY_TOLERANCE * seen.best:
            self._cut()
            return
        if busy and not (self.slow_start and grown):  # in slow start, one step per call: when taken on
            self.limit = min(float(self.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))

    def round_trip_s(self) -> float:
        """A typical answer's time here (1 s before any): the window within which signals share a cause."""
        return max((seen.recent for seen in self._latency.values()), default=1.0)

    def _cut(self) -> None:
        now = self.clock.now()
        if now - self._last_cut < self.round_trip_s():  # one cut per round trip: a burst of 429s is one signal
            return
        self._last_cut = now
        self.slow_start = False
        self.cuts += 1
        self.limit = max(1.0, self.limit / 2)
