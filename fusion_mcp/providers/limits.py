"""The per-provider limit on calls in flight, behind one small interface.

`ResilientProvider` holds one slot per attempt. The embedded limit is an `anyio.CapacityLimiter` in
this process; a shared store (fusion_mcp/store) hands in a limit held in Redis instead, so several
server replicas together never exceed a provider's `max_concurrency`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import anyio

if TYPE_CHECKING:
    from .spec import ProviderSpec


class ConcurrencyLimit(Protocol):
    """`async with limit.slot():` waits for a free slot and holds it for the block."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


# Builds the limit of one provider (by its spec: name and max_concurrency).
LimitFactory = Callable[["ProviderSpec"], ConcurrencyLimit]


class LocalLimit:
    """At most `capacity` slots held at once in this process."""

    def __init__(self, capacity: int) -> None:
        self.limiter = anyio.CapacityLimiter(capacity)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.limiter:
            yield


def local_limit(spec: "ProviderSpec") -> ConcurrencyLimit:
    return LocalLimit(spec.max_concurrency)
