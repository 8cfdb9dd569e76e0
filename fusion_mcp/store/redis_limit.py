"""A provider's limit on calls in flight, held in Redis so that every replica counts against it.

A sorted set per provider holds one member per slot in use, scored by when its claim expires; taking a
slot first drops expired members (so a dead replica's slots come back within one lease), then adds one
if fewer than the limit are held, all in one Lua script using Redis's clock. The replica renews the
claims it holds (`renew`, from the store's heartbeat) while their calls run, and removes them after.
A waiter polls with a short jittered sleep: simple, and cheap next to a model call. Only `capacity`
waiters of one replica poll at once (a replica can never hold more than that): a burst queues locally.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("fusion_mcp")

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
_TAKE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) * 2)
  return 1
end
return 0
"""
_RENEW = _NOW + """
local n = 0
for i = 1, #ARGV - 1 do
  n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[#ARGV]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[#ARGV])) * 2)
return n
"""
POLL_MIN_S = 0.005
POLL_MAX_S = 0.1


class RedisLimit:
    """At most `capacity` slots held at once across every replica sharing `key`."""

    def __init__(self, client: Redis, key: str, capacity: int, lease_s: float,
                 beat_client: Redis | None = None) -> None:
        self.client = client
        self.key = key
        self.capacity = capacity
        self.lease_s = lease_s
        self.held: set[str] = set()
        self.local = anyio.CapacityLimiter(capacity)
        self._take = client.register_script(_TAKE)
        self._renew = (beat_client or client).register_script(_RENEW)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.local, self._shared_slot():
            yield

    @asynccontextmanager
    async def _shared_slot(self) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        delay = POLL_MIN_S
        while not await self._take(keys=[self.key], args=[self.capacity, token, self.lease_s]):
            await anyio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 1.5, POLL_MAX_S)
        self.held.add(token)
        try:
            yield
        finally:
            self.held.discard(token)
            with anyio.CancelScope(shield=True):
                try:
                    await self.client.zrem(self.key, token)
                except Exception:  # the claim lapses by itself within one lease
                    log.warning("could not release a %s slot; it frees itself in %g s", self.key, self.lease_s)

    async def renew(self) -> None:
        """Push back the expiry of every slot this replica holds (called every third of a lease)."""
        if self.held:
            await self._renew(keys=[self.key], args=[*self.held, self.lease_s])
