"""A run as any replica sees it through a shared store: its status, progress and, once done, result.

`RunRecord` answers the same questions as a local `RunHandle` (background.py), so the tools show a
run started on another replica exactly as one started here. `SharedRuns` is what a store offers
(store/redis_runs.py); the embedded default has none: the process's own handles and RunStore suffice.
"""

import time
from typing import Literal, Protocol

from pydantic import BaseModel

from ..fusion.events import ProgressEvent
from ..fusion.result import FusionResult
from .background import RunHandle, RunKind

RunStatus = Literal["running", "done", "failed"]
SHUTDOWN_ERROR = "the server replica running it shut down before it finished; ask again"


class RunRecord(BaseModel):
    run_id: str
    kind: RunKind
    ensemble: str
    include_drafts: bool
    deadline_s: float
    started_at: float  # seconds since the epoch: replicas share a clock, not a monotonic one
    status: RunStatus
    replica: str = ""
    error: str | None = None
    result: FusionResult | None = None
    last_event: ProgressEvent | None = None
    task_ttl_ms: int | None = None  # an MCP task stands for this run (tasks.py)

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def elapsed_s(self) -> float:
        return round(max(0.0, time.time() - self.started_at), 1)

    def time_left_s(self) -> float:
        return round(max(0.0, self.deadline_s - (time.time() - self.started_at)), 1)

    @classmethod
    def of_handle(cls, handle: RunHandle, replica: str) -> "RunRecord":
        """The record of a run executing on this replica, as it stands now."""
        if not handle.finished:
            status: RunStatus = "running"
        else:
            status = "done" if handle.result is not None else "failed"
        error = handle.error if status == "failed" else None
        return cls(run_id=handle.run_id, kind=handle.kind, ensemble=handle.ensemble,
                   include_drafts=handle.include_drafts, deadline_s=handle.deadline_s,
                   started_at=time.time() - handle.elapsed_s(), status=status, replica=replica,
                   error=error or (SHUTDOWN_ERROR if status == "failed" else None),
                   result=handle.result, last_event=handle.last_event, task_ttl_ms=handle.task_ttl_ms)


class SharedRuns(Protocol):
    """Runs published for every replica: the executing one writes, any one reads and waits."""

    async def started(self, handle: RunHandle) -> None: ...

    async def finished(self, handle: RunHandle) -> None: ...

    async def find(self, run_id: str) -> RunRecord | None: ...

    async def wait(self, run_id: str, timeout_s: float) -> RunRecord | None: ...

