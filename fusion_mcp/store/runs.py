"""Runs that outlive one tool call, as the store keeps them: a live handle in the process executing
the run, a record that any replica can read, and one lookup (`RunStore.find`) over both.

The store knows nothing of what a run computes: its result is any pydantic model (the server's
`FusionResult`), its progress a count and a message. `EmbeddedRuns` keeps this process's runs in
memory (bounded: the oldest finished run is dropped once `max_runs` are kept; nothing on disk, since a
run holds the user's question and drafts); `store/redis_runs.py` shares them between replicas.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

import anyio
from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)
RunStatus = Literal["running", "done", "failed"]
DEFAULT_MAX_RUNS = 100
SHUTDOWN_ERROR = "the server replica running it shut down before it finished; ask again"
CANCELLED_ERROR = "the run was cancelled before it finished"


class RunProgress(BaseModel):
    """Where a running run has got to: steps done of the total, and the latest step's message."""

    done: int = 0
    total: int | None = None
    message: str | None = None


class UnknownRunError(LookupError):
    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        super().__init__(message)


@dataclass
class RunHandle(Generic[R]):
    """A run executing (or executed) in this process: what the tools wait on and show."""

    run_id: str
    kind: str
    ensemble: str
    include_drafts: bool
    deadline_s: float
    started: float = field(default_factory=anyio.current_time)
    done: anyio.Event = field(default_factory=anyio.Event)
    result: R | None = None
    error: str | None = None
    progress: RunProgress | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    owner: str | None = None  # the signed-in user who started it; None without sign-in
    task_ttl_ms: int | None = None  # an MCP task stands for this run, kept this long (server/tasks.py)
    started_wall: float = field(default_factory=time.time)  # epoch seconds, for task timestamps
    updated_wall: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def cancel(self) -> None:
        """Stop the run (tasks/cancel): its work is cancelled and it ends as cancelled."""
        self.scope.cancel()

    def elapsed_s(self) -> float:
        return round(anyio.current_time() - self.started, 1)

    def time_left_s(self) -> float:
        return round(max(0.0, self.deadline_s - (anyio.current_time() - self.started)), 1)


class RunRecord(BaseModel, Generic[R]):
    """A run as any replica sees it through a shared store; answers what a `RunHandle` answers."""

    run_id: str
    kind: str
    ensemble: str
    include_drafts: bool
    deadline_s: float
    started_at: float  # seconds since the epoch: replicas share a clock, not a monotonic one
    status: RunStatus
    replica: str = ""
    error: str | None = None
    result: R | None = None
    progress: RunProgress | None = None
    owner: str | None = None
    task_ttl_ms: int | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def elapsed_s(self) -> float:
        return round(max(0.0, time.time() - self.started_at), 1)

    def time_left_s(self) -> float:
        return round(max(0.0, self.deadline_s - (time.time() - self.started_at)), 1)

    @classmethod
    def of_handle(cls, handle: RunHandle[R], replica: str) -> RunRecord[R]:
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
                   result=handle.result, progress=handle.progress, owner=handle.owner,
                   task_ttl_ms=handle.task_ttl_ms)


class RunStore(Protocol[R]):
    """Where runs are kept. The executing process tells it when a run starts and ends; any process
    finds a run by id: its own handle, else (shared stores) another replica's record."""

    def add(self, handle: RunHandle[R]) -> None: ...

    def running(self) -> list[RunHandle[R]]: ...

    def local(self, run_id: str) -> RunHandle[R] | None:
        """The run, when it executes (or executed) in this process."""
        ...

    def kept(self) -> list[RunHandle[R]]:
        """This process's runs, oldest first."""
        ...

    async def started(self, handle: RunHandle[R]) -> None: ...

    async def finished(self, handle: RunHandle[R]) -> None: ...

    async def find(self, run_id: str, wait_s: float = 0.0) -> RunHandle[R] | RunRecord[R]:
        """The run, from this process or the store; a remote one is waited for up to `wait_s`.
        Raises UnknownRunError (with a message that says what to do) when nobody has it."""
        ...

    def unknown(self, run_id: str) -> UnknownRunError:
        """The error for a run id nobody has (also what a caller who may not see a run is told)."""
        ...


class EmbeddedRuns(Generic[R]):
    """This process's runs, in memory; the oldest finished one goes once `max_runs` are kept."""

    def __init__(self, max_runs: int = DEFAULT_MAX_RUNS) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.max_runs = max_runs
        self.handles: OrderedDict[str, RunHandle[R]] = OrderedDict()

    def add(self, handle: RunHandle[R]) -> None:
        self.handles[handle.run_id] = handle

    def running(self) -> list[RunHandle[R]]:
        return [h for h in self.handles.values() if not h.finished]

    def local(self, run_id: str) -> RunHandle[R] | None:
        return self.handles.get(run_id)

    def kept(self) -> list[RunHandle[R]]:
        return list(self.handles.values())

    async def started(self, handle: RunHandle[R]) -> None:
        self.add(handle)

    async def finished(self, handle: RunHandle[R]) -> None:
        self.handles.move_to_end(handle.run_id)
        # `handle` counts as finished: the store hears of a run's end before its waiters do.
        finished = [rid for rid, h in self.handles.items() if h.finished or h is handle]
        for run_id in finished[: max(0, len(finished) - self.max_runs)]:
            del self.handles[run_id]

    async def find(self, run_id: str, wait_s: float = 0.0) -> RunHandle[R] | RunRecord[R]:
        handle = self.handles.get(run_id)
        if handle is None:
            raise self.unknown(run_id)
        return handle

    def unknown(self, run_id: str) -> UnknownRunError:
        kept = sum(1 for h in self.handles.values() if h.finished)
        return UnknownRunError(run_id, (
            f"unknown run id {run_id!r}: this server process keeps its last {self.max_runs} runs in memory "
            f"({kept} now) and forgets them on restart; run compare_drafts again to get a fresh run id"))
