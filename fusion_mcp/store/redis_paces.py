"""The pace book (fusion/paces.py) kept in Redis, so every replica plans with what all have measured.

Each replica learns from its own calls as before; after each run (`save`) it writes the models it
measured since and reads back every model's pace. Two replicas measuring one model at once: the last
write wins, which for a moving average is a fine approximation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from ..providers import Completion
from ..fusion.paces import Pace, PaceBook

log = logging.getLogger("fusion_mcp")


class RedisPaceBook(PaceBook):
    def __init__(self, client: Any, prefix: str) -> None:
        super().__init__(path=None)
        self.client = client
        self.paces_key = f"{prefix}:paces"
        self.outputs_key = f"{prefix}:outputs"
        self._changed: set[str] = set()
        self._changed_outputs: set[str] = set()

    def observe(self, ref: str, stage: str, completion: Completion) -> None:
        super().observe(ref, stage, completion)
        if completion.cached:
            return
        if ref in self.measured:
            self._changed.add(ref)
        if f"{ref}|{stage}" in self.outputs:
            self._changed_outputs.add(f"{ref}|{stage}")

    async def save(self) -> None:
        """Write what this replica measured, then take everyone's (a store error costs only learning)."""
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
        except Exception as exc:
            log.warning("cannot share model paces through the store: %s", exc)

    async def load(self) -> None:
        paces = await self.client.hgetall(self.paces_key)
        outputs = await self.client.hgetall(self.outputs_key)
        for ref, raw in paces.items():
            try:
                self.measured[ref] = Pace(**json.loads(raw))
            except (ValueError, TypeError):
                log.warning("ignoring an unreadable pace for %s in the store", ref)
        for key, raw in outputs.items():
            try:
                self.outputs[key] = float(raw)
            except ValueError:
                pass
