"""The call cache in Redis: one key per call key, so a replica answers what another already paid for.

Each value is kept `keep_s` (default a week) from when it was stored; it holds only text, usage, cost
and timing (never an API key), as in the embedded SQLite cache (store/call_cache.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .outage import StoreHealth, store_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEEP_S = 7 * 24 * 3600


class RedisCallCache:
    """A `CallCache` shared by every replica that uses the same store."""

    def __init__(self, client: Redis, prefix: str, keep_s: int = KEEP_S, health: StoreHealth | None = None) -> None:
        self.client = client
        self.health = health if health is not None else StoreHealth(client)
        self.prefix = prefix
        self.keep_s = keep_s
        self.hits = 0
        self.misses = 0

    async def get(self, key: str) -> str | None:
        """The cached value; None too while the store is down (the call is made, not cached)."""
        if self.health.down:
            return None
        try:
            raw = await self.client.get(f"{self.prefix}:call:{key}")
        except store_errors() as exc:
            self.health.failed(exc, "reading the call cache")
            return None
        if raw is None:
            self.misses += 1
        else:
            self.hits += 1
        return raw if raw is None or isinstance(raw, str) else raw.decode()  # str: the client decodes

    async def put(self, key: str, value: str, *, provider: str = "", model: str = "") -> None:
        if self.health.down:
            return
        try:
            await self.client.set(f"{self.prefix}:call:{key}", value, ex=self.keep_s)
        except store_errors() as exc:
            self.health.failed(exc, "writing the call cache")

    def unreadable(self) -> None:
        self.hits -= 1
        self.misses += 1
