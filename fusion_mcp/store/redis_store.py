"""The Redis store: one client (and a second for leases) behind the run store, call cache, pace store
and provider limits, and the heartbeat that renews this replica's leases (its runs and the provider
slots it holds)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Generic

import anyio

from .limits import ConcurrencyLimit
from .outage import StoreHealth, store_errors
from .redis_cache import RedisCallCache
from .redis_client import check, connect
from .redis_limit import RedisLimit
from .redis_paces import RedisPaces
from .redis_runs import RedisRuns
from .runs import DEFAULT_MAX_RUNS, R, RunRecord

log = logging.getLogger("fusion_mcp")
PREFIX = "fusion-mcp"


class RedisStore(Generic[R]):
    """A `Store` in Redis; `record_type` reads the shared run records back."""

    def __init__(self, url: str, lease_s: float, record_type: type[RunRecord[R]], prefix: str = PREFIX,
                 max_runs: int = DEFAULT_MAX_RUNS) -> None:
        self.url = url
        self.lease_s = lease_s
        self.prefix = prefix
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.client = connect(url)
        self.beat_client = connect(url)  # its own connections: a busy replica still renews its leases
        self.health = StoreHealth(self.beat_client)
        self.cache = RedisCallCache(self.client, prefix, health=self.health)
        self.paces = RedisPaces(self.client, prefix, health=self.health)
        self.runs: RedisRuns[R] = RedisRuns(self.client, prefix, lease_s, self.replica, record_type,
                                            beat_client=self.beat_client, max_runs=max_runs, health=self.health)
        self.limits: dict[str, RedisLimit] = {}
        self.shared = True

    def limit(self, name: str, capacity: int) -> ConcurrencyLimit:
        """The shared limit of one provider: every replica using a provider of this name counts."""
        key = f"{self.prefix}:limit:{name}"
        if key not in self.limits:
            self.limits[key] = RedisLimit(self.client, key, capacity, self.lease_s, self.beat_client, self.health)
        return self.limits[key]

    async def open(self) -> RedisStore[R]:
        await check(self.client, self.url)
        await self.paces.load()
        return self

    async def serve(self) -> None:
        """What a replica runs beside its server: the heartbeat, and the listener that wakes waiters."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.heartbeat)
            group.start_soon(self._listen)
            group.start_soon(self.health.watch, self._recovered)

    async def _recovered(self) -> None:
        try:
            await self.runs.publish_pending()
        except store_errors() as exc:
            self.health.failed(exc, "recording the runs of the outage")

    async def _listen(self) -> None:
        while True:  # a dropped connection costs a second of polling, then listening resumes
            try:
                await self.runs.listen()
            except store_errors() as exc:
                self.health.failed(exc, "listening for finished runs")
                await anyio.sleep(1)

    async def heartbeat(self) -> None:
        """Renew leases every third of a lease, for as long as the server runs; a missed beat is logged."""
        while True:
            await anyio.sleep(self.lease_s / 3)
            if self.health.down:
                continue  # the outage's probe notices the store is back
            try:
                await self.runs.heartbeat()
                for limit in list(self.limits.values()):
                    await limit.renew()
            except store_errors() as exc:
                self.health.failed(exc, "renewing leases")

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.beat_client.aclose()
