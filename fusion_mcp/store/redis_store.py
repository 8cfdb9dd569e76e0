"""The Redis store: one client for the run store, call cache, pace book and provider limits, and the
heartbeat that renews this replica's leases (its runs and the provider slots it holds)."""

from __future__ import annotations

import logging
import os
import socket

import anyio

from ..providers.limits import ConcurrencyLimit
from ..providers.spec import ProviderSpec
from .redis_cache import RedisCallCache
from .redis_client import check, connect
from .redis_limit import RedisLimit
from .redis_paces import RedisPaceBook
from .redis_runs import RedisRuns

log = logging.getLogger("fusion_mcp")
PREFIX = "fusion-mcp"


class RedisStore:
    def __init__(self, url: str, lease_s: float, prefix: str = PREFIX) -> None:
        self.url = url
        self.lease_s = lease_s
        self.prefix = prefix
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.client = connect(url)
        self.cache = RedisCallCache(self.client, prefix)
        self.paces = RedisPaceBook(self.client, prefix)
        self.runs = RedisRuns(self.client, prefix, lease_s, self.replica)
        self.limits: dict[str, RedisLimit] = {}

    def limit(self, spec: ProviderSpec) -> ConcurrencyLimit:
        """The shared limit of one provider: every replica using a provider of this name counts."""
        key = f"{self.prefix}:limit:{spec.name}"
        if key not in self.limits:
            self.limits[key] = RedisLimit(self.client, key, spec.max_concurrency, self.lease_s)
        return self.limits[key]

    async def open(self) -> "RedisStore":
        await check(self.client, self.url)
        await self.paces.load()
        return self

    async def heartbeat(self) -> None:
        """Renew leases every third of a lease, for as long as the server runs; a missed beat is logged."""
        while True:
            await anyio.sleep(self.lease_s / 3)
            try:
                await self.runs.heartbeat()
                for limit in list(self.limits.values()):
                    await limit.renew()
            except Exception as exc:
                log.warning("cannot renew leases in the store: %s", exc)

    async def aclose(self) -> None:
        await self.client.aclose()
