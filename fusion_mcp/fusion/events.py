"""Progress events a caller can follow while a run is in flight (CLI display, MCP progress)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

log = logging.getLogger("fusion_mcp")


class ProgressEvent(BaseModel):
    stage: Literal["draft", "review", "synthesis"]
    done: int
    total: int
    message: str
    model: str | None = None
    status: str | None = None
    latency_s: float | None = None


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


class Progress:
    """Counts a run's steps and sends one event per finished step. The total is fixed at the start;
    a step that ends without news (a draft cut at the deadline) is `skip`ped so the count still adds up."""

    def __init__(self, total: int, on_event: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._on_event = on_event

    async def step(self, stage: str, message: str, **extra: object) -> None:
        self.done += 1
        if self._on_event is None:
            return
        event = ProgressEvent(stage=stage, done=self.done, total=self.total, message=message, **extra)  # type: ignore[arg-type]
        try:
            await self._on_event(event)
        except Exception:  # a broken progress consumer must not break the run
            log.exception("progress callback failed")

    def skip(self, steps: int = 1) -> None:
        self.done += steps
