"""Progress events a caller can follow while a run is in flight (CLI display, MCP progress)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel


class ProgressEvent(BaseModel):
    stage: Literal["draft", "review", "synthesis"]
    done: int
    total: int
    message: str
    model: str | None = None
    status: str | None = None
    latency_s: float | None = None


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]
