"""A provider's limit on calls in flight, held in Redis so that every replica counts against it.

A sorted set per provider holds one member per slot in use, scored by when its claim expires; taking a
slot first drops expired members (so a dead replica's slots come back within one lease), then adds one
if fewer than the limit are held, all in one Lua script using Redis's clock. The replica renews the
claims it holds (`renew`, from the store's heartbeat) while their calls run, and removes them after.
A waiter polls with a short jittered sleep: simple, and cheap next to a model call. Only `capacity`
waiters of one replica poll at once (a replica can never hold more than that): a burst queues locally.
While the store is down or full (store/outage.py) a call holds only this replica's slot.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from .outage import StoreHealth, store_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis


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
                 beat_client: Redis | None = None, health: StoreHealth | None = None) -> None:
        self.client = client
        self.health = health if health is not None else StoreHealth(client)
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

    async def _claim(self) -> str | None:
        """A slot's token once one is free; None when the store is down or full (this replica's own
        limit then holds alone)."""
        token = uuid.uuid4().hex
        delay = POLL_MIN_S
        while not self.health.down:
            try:
                if await self._take(keys=[self.key], args=[self.capacity, token, self.lease_s]):
                    return token
            except store_errors() as exc:
                self.health.failed(exc, "counting a provider's calls")
                return None
            await anyio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 1.5, POLL_MAX_S)
        return None

    @asynccontextmanager
    async def _shared_slot(self) -> AsyncIterator[None]:
        token = await self._claim()
        if token is not None:
            self.held.add(token)
        try:
            yield
        finally:
            if token is not None:
                self.held.discard(token)
                with anyio.CancelScope(shield=True):
                    try:
                        await self.client.zrem(self.key, token)
                    except store_errors() as exc:  # the claim lapses by itself within one lease
                        self.health.failed(exc, "releasing a provider slot")

    async def renew(self) -> None:
        """Push back the expiry of every slot this replica holds (called every third of a lease)."""
        if self.held:
            await self._renew(keys=[self.key], args=[*self.held, self.lease_s])
