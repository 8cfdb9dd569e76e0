"""The per-provider limit on calls in flight (the shared count), behind one small interface.

`ResilientProvider` (providers/resilience.py) holds one slot per attempt, inside the model's adaptive
limit (providers/limiter.py, the policy). The embedded limit is an `anyio.CapacityLimiter` in this
process; a Redis store hands in a limit held in Redis instead (store/redis_limit.py), so several server
replicas together never exceed a provider's `max_concurrency`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import anyio


class ConcurrencyLimit(Protocol):
    """`async with limit.slot():` waits for a free slot and holds it for the block."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


# Builds the limit of one provider, by its name and its max_concurrency.
LimitFactory = Callable[[str, int], ConcurrencyLimit]


class LocalLimit:
    """At most `capacity` slots held at once in this process."""

    def __init__(self, capacity: int) -> None:
        self.limiter = anyio.CapacityLimiter(capacity)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.limiter:
            yield


def local_limit(name: str, capacity: int) -> ConcurrencyLimit:
    return LocalLimit(capacity)
