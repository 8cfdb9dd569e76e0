"""The call cache in Redis: one key per `call_key`, so a replica answers what another already paid for.

Each completion is kept `keep_s` (default a week) from when it was stored; it holds only text, usage,
cost and timing (never an API key), as in the embedded SQLite cache (fusion/call_cache.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..providers.base import Completion

KEEP_S = 7 * 24 * 3600


class RedisCallCache:
    """A `CallCache` shared by every replica that uses the same store."""

    def __init__(self, client: Any, prefix: str, keep_s: int = KEEP_S) -> None:
        self.client = client
        self.prefix = prefix
        self.keep_s = keep_s
        self.hits = 0
        self.misses = 0

    async def get(self, key: str) -> Completion | None:
        raw = await self.client.get(f"{self.prefix}:call:{key}")
        if raw is None:
            self.misses += 1
            return None
        try:
            completion = Completion.model_validate_json(raw)
        except ValidationError:  # written by an incompatible version: treat as absent
            self.misses += 1
            return None
        self.hits += 1
        return completion

    async def put(self, key: str, completion: Completion) -> None:
        data = completion.model_copy(update={"cached": False}).model_dump_json()
        await self.client.set(f"{self.prefix}:call:{key}", data, ex=self.keep_s)
