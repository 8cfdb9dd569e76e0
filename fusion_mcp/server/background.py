"""Runs that outlive one tool call: start, then poll.

A host ends a tool call after about 60 s (Claude Desktop), whatever the run needs. So every run starts
in the server's own task group, and the tool waits for it at most the tool-time limit: a run still
going is answered as `running` (with its run_id) and goes on to its own deadline; `get_run` waits for
it again. A run whose tool call is cancelled while waiting is cancelled too (the user stopped it);
once a tool call has returned `running`, the run no longer depends on any client and ends at its
deadline, or on shutdown. At most `max_running` runs are in flight at once.
"""

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio
from anyio.abc import TaskGroup

from ..errors import FusionError, NoDraftsError
from ..fusion.events import ProgressCallback, ProgressEvent
from ..fusion.result import FusionResult
from .runs import RunStore

log = logging.getLogger("fusion_mcp")
RunKind = Literal["fused_answer", "compare_drafts"]
Work = Callable[[ProgressCallback], Awaitable[FusionResult]]
DEADLINE_GRACE_S = 5.0  # a safety net over the run's own deadline, for a stage that overruns it
KEEP_FINISHED = 200
SHUTTING_DOWN = "the server is shutting down: this run was stopped; call again once it has restarted"


class TooManyRunsError(FusionError):
    pass


@dataclass
class RunHandle:
    run_id: str
    kind: RunKind
    ensemble: str
    include_drafts: bool
    deadline_s: float
    started: float = field(default_factory=anyio.current_time)
    done: anyio.Event = field(default_factory=anyio.Event)
    result: FusionResult | None = None
    error: str | None = None
    last_event: ProgressEvent | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    listener: ProgressCallback | None = None  # the progress of the tool call waiting on it, if any

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def elapsed_s(self) -> float:
        return round(anyio.current_time() - self.started, 1)

    def time_left_s(self) -> float:
        return round(max(0.0, self.deadline_s - (anyio.current_time() - self.started)), 1)


class RunObserver(Protocol):
    """Told when a run starts and ends here: a shared store publishes it to the other replicas."""

    async def started(self, handle: "RunHandle") -> None: ...

    async def finished(self, handle: "RunHandle") -> None: ...


class BackgroundRuns:
    def __init__(self, store: RunStore, max_running: int, observer: RunObserver | None = None) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.store = store
        self.max_running = max_running
        self.handles: OrderedDict[str, RunHandle] = OrderedDict()
        self.observer = observer
        self._group: TaskGroup | None = None
        self._slot_freed = anyio.Event()  # set (and replaced) whenever a run ends
        self.stopping: str | None = None  # why no run starts any more (the server is shutting down)

    def attach(self, group: TaskGroup | None) -> None:
        """The task group runs live in (the server's lifespan); None once it is closing."""
        self._group = group if self.stopping is None else None

    def shut_down(self) -> None:
        """SIGTERM/SIGINT: start no run, cancel every run in flight (closing its upstream requests);
        each ends failed with a message saying why, which the tool calls waiting on it answer with
        and a shared store records at once."""
        self.stopping = SHUTTING_DOWN
        self._group = None
        for handle in self.running():
            handle.scope.cancel()

    def running(self) -> list[RunHandle]:
        return [h for h in self.handles.values() if not h.finished]

    async def start(self, run_id: str, kind: RunKind, ensemble: str, include_drafts: bool, deadline_s: float,
                    work: Work, *, queue_s: float = 0.0) -> RunHandle:
        """Start a run; when `max_running` are in flight, wait up to `queue_s` for one to end (a burst
        queues rather than fails), then refuse."""
        if self._group is None:
            raise FusionError(SHUTTING_DOWN)
        with anyio.move_on_after(queue_s):
            while len(self.running()) >= self.max_running:
                await self._slot_freed.wait()
        if len(self.running()) >= self.max_running:
            raise TooManyRunsError(
                f"{self.max_running} run(s) are already in flight on this server: wait for one with get_run "
                "(its run_id came with its first answer), then call again"
            )
        if self._group is None:
            raise FusionError(SHUTTING_DOWN)
        handle = RunHandle(run_id, kind, ensemble, include_drafts, deadline_s)
        self.handles[run_id] = handle
        while len(self.handles) > KEEP_FINISHED:
            oldest = next(iter(self.handles))
            if not self.handles[oldest].finished:
                break
            self.handles.popitem(last=False)
        self._group.start_soon(self._execute, handle, work)
        return handle

    async def _execute(self, handle: RunHandle, work: Work) -> None:
        async def on_event(event: ProgressEvent) -> None:
            handle.last_event = event
            if handle.listener is not None:
                await handle.listener(event)

        try:
            if self.observer is not None:
                await self.observer.started(handle)
            with handle.scope, anyio.move_on_after(handle.deadline_s + DEADLINE_GRACE_S) as net:
                handle.result = await work(on_event)
            if handle.result is not None:
                self.store.put(handle.result)
            elif net.cancelled_caught:
                handle.error = (f"the run did not finish within its {handle.deadline_s:g} s deadline "
                                f"(+{DEADLINE_GRACE_S:g} s); its model calls were cancelled. Try a faster ensemble.")
            else:
                handle.error = self.stopping or "the run was cancelled before it finished"
        except NoDraftsError as exc:
            reasons = "; ".join(f"{model}: {why}" for model, why in exc.reasons.items())
            handle.error = (f"every draft of ensemble {exc.ensemble!r} failed ({reasons}). Check the keys and model "
                            "ids (list_ensembles), raise deadline_s if they timed out, or try another ensemble.")
        except FusionError as exc:
            handle.error = str(exc)
        except Exception as exc:  # a bug must end this run with a message, never the server
            handle.error = f"the run failed unexpectedly: {type(exc).__name__}: {exc}"
        finally:
            handle.done.set()
            self._slot_freed.set()
            self._slot_freed = anyio.Event()
            if self.observer is not None:
                await self._tell_finished(handle)

    async def _tell_finished(self, handle: RunHandle) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await self.observer.finished(handle)  # type: ignore[union-attr]
            except Exception as exc:  # the other replicas then see the run fail once its lease lapses
                log.warning("could not publish the end of run %s: %s", handle.run_id, exc)

    async def wait(self, handle: RunHandle, timeout_s: float, on_event: ProgressCallback | None,
                   *, cancel_with_caller: bool) -> bool:
        """Wait up to `timeout_s` for the run; True when it is finished. If this wait is cancelled and
        `cancel_with_caller` (the client cancelled the tool call that started the run), so is the run."""
        handle.listener = on_event
        try:
            with anyio.move_on_after(timeout_s):
                await handle.done.wait()
        except anyio.get_cancelled_exc_class():
            if cancel_with_caller:
                handle.scope.cancel()
            raise
        finally:
            if handle.listener is on_event:
                handle.listener = None
        return handle.finished
