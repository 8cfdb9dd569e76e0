"""The clock that time decisions read: real (anyio's) in the engine, fake in tests.

The time plan, the draft round, the adaptive limit and eval's runner take a `Clock` instead of
calling `anyio.current_time()` and `anyio.sleep()` themselves (eval's budget gate needs none: it is
plain state), so every decision they make can be tested by moving a `FakeClock` by hand, in no real
time and with nothing left to the machine's load.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread


class Clock(Protocol):
    """Seconds on a monotonic clock, and a sleep measured on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """anyio's clock (the event loop's monotonic time)."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


REAL_CLOCK = RealClock()


async def wait_event(clock: Clock, event: anyio.Event, until: float) -> bool:
    """Wait for `event` until the clock reads `until`; True if the event came first."""
    if event.is_set():
        return True
    if clock.now() >= until:
        await anyio.lowlevel.checkpoint()
        return event.is_set()
    if isinstance(clock, RealClock):  # the common case, without a task per wait
        with anyio.move_on_after(until - clock.now()):
            await event.wait()
        return event.is_set()
    async with anyio.create_task_group() as tg:
        async def timer() -> None:
            await clock.sleep(until - clock.now())
            tg.cancel_scope.cancel()

        tg.start_soon(timer)
        await event.wait()
        tg.cancel_scope.cancel()
    return event.is_set()


def _blocked(task: Any) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is not None and not waiter.done()


class FakeClock:
    """A clock that moves only when told to: `await clock.advance(seconds)` wakes every sleeper due by
    then, in order, letting the woken tasks run before the next one is due."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), woken))
        await woken.wait()

    async def settle(self) -> None:
        """Let every task run until all wait on something (a sleep, an event) and no worker thread is
        busy. On asyncio this spins the loop instead of anyio's wait_all_tasks_blocked, which sleeps
        0.1 s of real time per turn."""
        try:
            this = asyncio.current_task()
        except RuntimeError:  # not on asyncio (trio)
            await anyio.wait_all_tasks_blocked()
            return
        threads = anyio.to_thread.current_default_thread_limiter()
        for _ in range(100_000):
            if threads.borrowed_tokens:  # work in a worker thread takes real time: let it finish first
                await asyncio.sleep(0.001)
                continue
            await asyncio.sleep(0)
            if all(task is this or _blocked(task) for task in asyncio.all_tasks()) and not threads.borrowed_tokens:
                return
        await anyio.wait_all_tasks_blocked()

    async def advance(self, seconds: float) -> None:
        target = self.t + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            at, _, woken = heapq.heappop(self._sleepers)
            self.t = max(self.t, at)
            woken.set()
            await self.settle()
        self.t = target
        await self.settle()

    async def run_until(self, at: float) -> None:
        """Advance to the reading `at`, waking every sleeper due on the way."""
        await self.advance(max(0.0, at - self.t))
