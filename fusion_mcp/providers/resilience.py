"""Retries, deadlines and concurrency limits, as a wrapper around any provider."""

from __future__ import annotations

import random
import time

import anyio

from ..errors import ProviderError, ProviderTimeoutError, RateLimitedError
from ..store.limits import ConcurrencyLimit, LocalLimit
from .base import ChatRequest, Completion, Provider, TextSink
from .limiter import AdaptiveLimit, SlotUse

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Jittered exponential backoff: uniform in [c/2, c] with c = min(cap, base * 2**attempt)."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**attempt))
    return (rng or random).uniform(ceiling / 2, ceiling)


class ResilientProvider:
    """Retries retryable failures with jittered backoff, honouring Retry-After, and never past the
    call's time budget. Three limits hold each attempt: the model's own adaptive limit (as many calls
    in flight as its upstream keeps up with; one model's 429s say nothing about the others), the
    provider's ceiling `max_concurrency` (`ceiling`: in this process, or shared by every replica
    through a store, see store/limits.py), and the shared HTTP pool's connections (`pool_slots`), so that
    no call queues inside the pool."""

    def __init__(self, inner: Provider, *, max_retries: int, max_concurrency: int, timeout_s: float,
                 ceiling: ConcurrencyLimit | None = None, pool_slots: anyio.CapacityLimiter | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_retries = max_retries
        self.per_attempt_timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.ceiling = ceiling if ceiling is not None else LocalLimit(max_concurrency)
        self.pool_slots = pool_slots
        self._limits: dict[str, AdaptiveLimit] = {}

    def limit(self, model: str) -> AdaptiveLimit:
        if model not in self._limits:
            self._limits[model] = AdaptiveLimit(self.max_concurrency)
        return self._limits[model]

    async def _attempt(self, model: str, request: ChatRequest, deadline: float, sink: TextSink | None) -> Completion:
        limit = self.limit(model)
        sink = sink if sink is not None else TextSink()
        sink.queued(limit.rate_limiting)  # queued behind a rate limit: the time plan's straggler
        async with limit.slot(model) as use, self.ceiling.slot():
            sink.on_admitted = use.admitted  # taken on (headers, a first token): the limit's early sign
            try:
                if self.pool_slots is not None:
                    async with self.pool_slots:
                        return await self._timed(model, request, deadline, use, sink)
                return await self._timed(model, request, deadline, use, sink)
            finally:  # a sink the caller uses again (a tool loop) must not grow a slot given back
                sink.on_admitted = None

    async def _timed(self, model: str, request: ChatRequest, deadline: float, use: SlotUse,
                     sink: TextSink) -> Completion:
        budget = min(deadline - anyio.current_time(), self.per_attempt_timeout_s)
        started = anyio.current_time()
        sink.dispatched()
        with anyio.fail_after(budget):
            result = await self.inner.complete(model, request, timeout_s=budget, sink=sink)
        use.latency_s = anyio.current_time() - started
        return result

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        started = time.perf_counter()
        deadline = anyio.current_time() + timeout_s
        attempt = 0
        while True:
            try:
                # The wait for a free slot counts against the deadline too: a call queued behind
                # another run's must still time out on time.
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    result = await self._attempt(model, request, deadline, sink)
                return result.model_copy(
                    update={"attempts": attempt + 1, "latency_s": time.perf_counter() - started}
                )
            except TimeoutError:
                error: ProviderError = ProviderTimeoutError(
                    self.name, model, f"no answer within {time.perf_counter() - started:.1f} s"
                )
            except ProviderError as exc:
                error = exc
            if not error.retryable or attempt >= self.max_retries:
                raise error
            if sink is not None and isinstance(error, RateLimitedError):
                sink.throttled()
            wait = backoff_delay(attempt)
            if isinstance(error, RateLimitedError) and error.retry_after is not None:
                wait = max(wait, error.retry_after)
            if anyio.current_time() + wait >= deadline:
                raise error
            await anyio.sleep(wait)
            attempt += 1
