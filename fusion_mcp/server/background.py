"""Runs that outlive one tool call: start, then poll.

A host ends a tool call after about 60 s (Claude Desktop), whatever the run needs. So every run starts
in the server's own task group, and the tool waits for it at most the tool-time limit: a run still
going is answered as `running` (with its run_id) and goes on to its own deadline; `get_run` waits for
it again. A run whose tool call is cancelled while waiting is cancelled too (the user stopped it);
once a tool call has returned `running`, the run no longer depends on any client and ends at its
deadline, or on shutdown. At most `max_running` runs are in flight at once.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
from anyio.abc import TaskGroup

from ..errors import FusionError, NoDraftsError
from ..fusion.events import ProgressCallback, ProgressEvent
from ..fusion.result import FusionResult
from ..store.runs import CANCELLED_ERROR, RunHandle, RunProgress, RunRecord, RunStore

log = logging.getLogger("fusion_mcp")
RunKind = Literal["fused_answer", "compare_drafts"]
Work = Callable[[ProgressCallback], Awaitable[FusionResult]]
DEADLINE_GRACE_S = 5.0  # a safety net over the run's own deadline, for a stage that overruns it
STORE_WRITE_S = 3.0  # the longest a run's end waits on the store (a shutdown is bounded too)
SHUTTING_DOWN = "the server is shutting down: this run was stopped; call again once it has restarted"


class TooManyRunsError(FusionError):
    pass


Handle = RunHandle[FusionResult]
Record = RunRecord[FusionResult]


class BackgroundRuns:
    """Executes runs in the server's task group; the store (store/runs.py) keeps them and finds them."""

    def __init__(self, store: RunStore[FusionResult], max_running: int) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.store = store
        self.max_running = max_running
        self.listeners: dict[str, ProgressCallback] = {}  # the progress of the tool call waiting on a run
        self._group: TaskGroup | None = None
        self.queued = 0  # runs waiting for a slot (a metric)
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

    def running(self) -> list[Handle]:
        return self.store.running()

    async def start(self, run_id: str, kind: RunKind, ensemble: str, include_drafts: bool, deadline_s: float,
                    work: Work, *, queue_s: float = 0.0, owner: str | None = None) -> Handle:
        """Start a run; when `max_running` are in flight, wait up to `queue_s` for one to end (a burst
        queues rather than fails), then refuse."""
        if self._group is None:
            raise FusionError(SHUTTING_DOWN)
        self.queued += 1
        try:
            with anyio.move_on_after(queue_s):
                while len(self.running()) >= self.max_running:
                    await self._slot_freed.wait()
        finally:
            self.queued -= 1
        if len(self.running()) >= self.max_running:
            raise TooManyRunsError(
                f"{self.max_running} run(s) are already in flight on this server: wait for one with get_run "
                "(its run_id came with its first answer), then call again"
            )
        if self._group is None:
            raise FusionError(SHUTTING_DOWN)
        handle: Handle = RunHandle(run_id, kind, ensemble, include_drafts, deadline_s, owner=owner)
        self.store.add(handle)  # found from now on, before its task starts
        self._group.start_soon(self._execute, handle, work)
        return handle

    async def _execute(self, handle: Handle, work: Work) -> None:
        async def on_event(event: ProgressEvent) -> None:
            handle.progress = RunProgress(done=event.done, total=event.total, message=event.message)
            handle.updated_wall = time.time()
            listener = self.listeners.get(handle.run_id)
            if listener is not None:
                await listener(event)

        try:
            await self.store.started(handle)
            with handle.scope, anyio.move_on_after(handle.deadline_s + DEADLINE_GRACE_S) as net:
                handle.result = await work(on_event)
            if handle.result is None and net.cancelled_caught:
                handle.error = (f"the run did not finish within its {handle.deadline_s:g} s deadline "
                                f"(+{DEADLINE_GRACE_S:g} s); its model calls were cancelled. Try a faster ensemble.")
            elif handle.result is None:
                handle.error = self.stopping or CANCELLED_ERROR
        except NoDraftsError as exc:
            reasons = "; ".join(f"{model}: {why}" for model, why in exc.reasons.items())
            handle.error = (f"every draft of ensemble {exc.ensemble!r} failed ({reasons}). Check the keys and model "
                            "ids (list_ensembles), raise deadline_s if they timed out, or try another ensemble.")
        except FusionError as exc:
            handle.error = str(exc)
        except Exception as exc:  # a bug must end this run with a message, never the server
            handle.error = f"the run failed unexpectedly: {type(exc).__name__}: {exc}"
        finally:
            handle.updated_wall = time.time()
            # The store first: a shared one may know this run's fate already (another replica declared
            # it lost while the store was unreachable), and what the waiting calls see must agree.
            await self._tell_finished(handle)
            handle.done.set()
            self._slot_freed.set()
            self._slot_freed = anyio.Event()

    async def _tell_finished(self, handle: Handle) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(STORE_WRITE_S):
            try:
                await self.store.finished(handle)
            except Exception as exc:  # the other replicas then see the run fail once its lease lapses
                log.warning("could not publish the end of run %s: %s", handle.run_id, exc)

    async def wait(self, handle: Handle, timeout_s: float, on_event: ProgressCallback | None,
                   *, cancel_with_caller: bool) -> bool:
        """Wait up to `timeout_s` for the run; True when it is finished. If this wait is cancelled and
        `cancel_with_caller` (the client cancelled the tool call that started the run), so is the run."""
        if on_event is not None:
            self.listeners[handle.run_id] = on_event
        try:
            with anyio.move_on_after(timeout_s):
                await handle.done.wait()
        except anyio.get_cancelled_exc_class():
            if cancel_with_caller:
                handle.scope.cancel()
            raise
        finally:
            if on_event is not None and self.listeners.get(handle.run_id) is on_event:
                del self.listeners[handle.run_id]
        return handle.finished
