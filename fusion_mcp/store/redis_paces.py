"""Model paces (store/paces.py) kept in Redis, so every replica plans with what all have measured.

Each replica learns from its own calls as before; after each run (`save`) it writes the models it
measured since and reads back every model's pace. Two replicas measuring one model at once: the last
write wins, which for a moving average is a fine approximation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from .outage import StoreHealth, store_errors
from .paces import Pace

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("fusion_mcp")


class RedisPaces:
    """A `PaceStore` shared by every replica that uses the same store."""

    def __init__(self, client: Redis, prefix: str, health: StoreHealth | None = None) -> None:
        self.client = client
        self.health = health if health is not None else StoreHealth(client)
        self.paces_key = f"{prefix}:paces"
        self.outputs_key = f"{prefix}:outputs"
        self.measured: dict[str, Pace] = {}
        self.outputs: dict[str, float] = {}
        self._changed: set[str] = set()
        self._changed_outputs: set[str] = set()

    def set_pace(self, ref: str, pace: Pace) -> None:
        self.measured[ref] = pace
        self._changed.add(ref)

    def set_output(self, key: str, tokens: float) -> None:
        self.outputs[key] = tokens
        self._changed_outputs.add(key)

    async def flush(self) -> None:
        await self.save()

    async def save(self) -> None:
        """Write what this replica measured, then take everyone's (a store error costs only learning)."""
        if self.health.down:
            return
        try:
            if self._changed:
                await self.client.hset(self.paces_key, mapping={
                    ref: json.dumps(asdict(self.measured[ref])) for ref in self._changed})
            if self._changed_outputs:
                await self.client.hset(self.outputs_key, mapping={
                    key: self.outputs[key] for key in self._changed_outputs})
            self._changed.clear()
            self._changed_outputs.clear()
            await self.load()
        except store_errors() as exc:
            self.health.failed(exc, "sharing model paces")

    async def load(self) -> None:
        paces = await self.client.hgetall(self.paces_key)  # str: the client decodes responses
        outputs = await self.client.hgetall(self.outputs_key)
        for ref, raw in paces.items():
            try:
                self.measured[str(ref)] = Pace(**json.loads(raw))
            except (ValueError, TypeError):
                log.warning("ignoring an unreadable pace for %s in the store", ref)
        for key, raw in outputs.items():
            try:
                self.outputs[str(key)] = float(raw)
            except ValueError:
                pass
