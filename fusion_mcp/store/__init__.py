"""The state layer: what a server keeps and its replicas may share, behind small interfaces.

runs (run handles and records, one lookup) · call_cache (completions by key) · paces (measured model
paces) · limits (a provider's calls in flight) · each with an embedded implementation (this process's
memory and files; nothing to install) and a Redis one (redis_*.py, the `[shared]` extra), so several
replicas behind a load balancer act as one server (docs/deploy.md). `open_store(url)` opens either.

The store is the lowest package: it imports nothing else of fusion_mcp but `errors` (docs/architecture.md).
It stores what others define (a run's result is any pydantic model; a cached completion is JSON text).
"""

from __future__ import annotations

from typing import Generic, Protocol

import anyio

from .call_cache import CallCache
from .limits import ConcurrencyLimit, LocalLimit
from .paces import FilePaces, PaceStore
from .runs import DEFAULT_MAX_RUNS, EmbeddedRuns, R, RunRecord, RunStore

DEFAULT_LEASE_S = 15.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Store(Protocol[R]):
    """Runs, call cache (None: calls are not cached), pace store and provider limits, opened together."""

    @property
    def shared(self) -> bool:
        """True when other replicas see the same state."""
        ...

    @property
    def runs(self) -> RunStore[R]: ...

    @property
    def cache(self) -> CallCache | None: ...

    @property
    def paces(self) -> PaceStore: ...

    def limit(self, name: str, capacity: int) -> ConcurrencyLimit: ...

    async def serve(self) -> None:
        """Upkeep while a server runs (Redis: lease renewal, finish announcements); cancelled at shutdown."""
        ...

    async def aclose(self) -> None: ...


class EmbeddedStore(Generic[R]):
    """Everything in this process: runs in memory, paces in `paces` (a file, or memory), local limits."""

    shared = False

    def __init__(self, *, max_runs: int = DEFAULT_MAX_RUNS, cache: CallCache | None = None,
                 paces: PaceStore | None = None) -> None:
        self.runs: EmbeddedRuns[R] = EmbeddedRuns(max_runs)
        self.cache = cache
        self.paces: PaceStore = paces if paces is not None else FilePaces()

    def limit(self, name: str, capacity: int) -> ConcurrencyLimit:
        return LocalLimit(capacity)

    async def serve(self) -> None:
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        return None


async def open_store(url: str | None, record_type: type[RunRecord[R]], *, lease_s: float = DEFAULT_LEASE_S,
                     max_runs: int = DEFAULT_MAX_RUNS, paces: PaceStore | None = None) -> Store[R]:
    """The store at `url` (redis://, rediss://, unix://), checked reachable, its paces loaded; None or
    "" for the embedded one (with `paces`, e.g. a file beside the call cache). `record_type` (a
    `RunRecord[YourResult]`) reads shared run records back."""
    if not url:
        return EmbeddedStore[R](max_runs=max_runs, paces=paces)
    from .redis_store import RedisStore

    return await RedisStore(url, lease_s, record_type, max_runs=max_runs).open()
