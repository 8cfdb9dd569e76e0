"""Retries, deadlines and a concurrency limit, as a wrapper around any provider."""

from __future__ import annotations

import random
import time

import anyio

from ..errors import ProviderError, ProviderTimeoutError, RateLimitedError
from .base import ChatRequest, Completion, Provider, TextSink
from .limits import ConcurrencyLimit, LocalLimit

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Jittered exponential backoff: uniform in [c/2, c] with c = min(cap, base * 2**attempt)."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**attempt))
    return (rng or random).uniform(ceiling / 2, ceiling)


class ResilientProvider:
    """Retries retryable failures with jittered backoff, honouring Retry-After, and never
    past the call's time budget; at most `max_concurrency` calls in flight to the provider."""

    def __init__(self, inner: Provider, *, max_retries: int, max_concurrency: int, timeout_s: float,
                 limit: ConcurrencyLimit | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_retries = max_retries
        self.per_attempt_timeout_s = timeout_s
        self.limit = limit if limit is not None else LocalLimit(max_concurrency)  # shared across replicas: limits.py

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
                    async with self.limit.slot():
                        budget = min(deadline - anyio.current_time(), self.per_attempt_timeout_s)
                        with anyio.fail_after(budget):
                            result = await self.inner.complete(model, request, timeout_s=budget, sink=sink)
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
            wait = backoff_delay(attempt)
            if isinstance(error, RateLimitedError) and error.retry_after is not None:
                wait = max(wait, error.retry_after)
            if anyio.current_time() + wait >= deadline:
                raise error
            await anyio.sleep(wait)
            attempt += 1
