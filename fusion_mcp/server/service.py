"""The server's state for its lifespan: the ensembles, one engine, and the runs it has made.

Tools and resources reach it through the lifespan context (`ctx.request_context.lifespan_context`),
as the SDK's example servers do. No `from __future__ import annotations` in the server package:
`mcp run` / `mcp dev` load modules under a fake name, and string annotations on tool return types
then silently lose the outputSchema.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..config.ensembles import Ensemble

from ..config.registry import EnsembleRegistry
from ..config.environment import seconds_from_env
from ..errors import ConfigError, FusionError, NoReadyEnsembleError, UnknownEnsembleError
from ..fusion.engine import FusionEngine
from ..fusion.events import ProgressCallback, ProgressEvent
from ..fusion.result import FusionResult
from .background import BackgroundRuns, RunHandle, RunKind, Work
from .run_record import RunRecord, SharedRuns
from .runs import DEFAULT_MAX_RUNS, RunStore, UnknownRunError

TOOL_TIMEOUT_ENV = "FUSION_MCP_TOOL_TIMEOUT"
# Claude Desktop ends a tool call at ~60 s; calls under ~30 s always arrive. 40 s leaves room.
DEFAULT_TOOL_TIMEOUT_S = 40.0
DEFAULT_MAX_RUNNING = 64


def tool_timeout_from_env() -> float:
    return seconds_from_env(TOOL_TIMEOUT_ENV, DEFAULT_TOOL_TIMEOUT_S, 1, 3600)


class FusionService:
    """The SDK enters the lifespan once per stdio or streamable-HTTP server, but once per connection
    for SSE; counting entries keeps one engine (and its HTTP client) while any connection is open."""

    def __init__(self, registry: EnsembleRegistry, *, engine: FusionEngine | None = None,
                 max_runs: int = DEFAULT_MAX_RUNS, tool_timeout_s: float | None = None,
                 max_running: int = DEFAULT_MAX_RUNNING, store_url: str | None = None,
                 confirm_over_usd: float | None = None) -> None:
        self.registry = registry
        self.confirm_over_usd = confirm_over_usd  # ask the user (elicitation) above this estimate (confirm.py)
        self.store_url = store_url  # None: the embedded store (this process); else Redis (store/)
        self.shared: SharedRuns | None = None
        self.runs = RunStore(max_runs)
        self.background = BackgroundRuns(self.runs, max_running)
        self.tool_timeout_s = tool_timeout_s if tool_timeout_s is not None else tool_timeout_from_env()
        self._given_engine = engine
        self._engine: FusionEngine | None = engine
        self._groups: list[TaskGroup] = []
        self._store: Any = None  # a RedisStore while serving with one

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator["FusionService"]:
        """One engine while any lifespan is entered; background runs live in the newest entry's task
        group and are cancelled when it exits (shutdown; for SSE, the connection closing)."""
        if self._engine is None:
            self._engine = await self._open_engine()
        try:
            async with anyio.create_task_group() as group:
                self._groups.append(group)
                self.background.attach(group)
                if self._store is not None:
                    group.start_soon(self._store.serve)
                try:
                    yield self
                finally:
                    self._groups.remove(group)
                    self.background.attach(self._groups[-1] if self._groups else None)
                    group.cancel_scope.cancel()
        finally:
            if not self._groups and self._given_engine is None and self._engine is not None:
                engine, self._engine = self._engine, None
                with anyio.CancelScope(shield=True):
                    await engine.aclose()
                    if self._store is not None:
                        store, self._store, self.shared, self.background.observer = self._store, None, None, None
                        await store.aclose()

    async def _open_engine(self) -> FusionEngine:
        """The engine over the embedded store, or over the shared one: its call cache (the server uses
        a cache only when shared), its pace book, its provider limits and its run store."""
        if self.store_url is None:
            return FusionEngine(self.registry)
        from ..store import lease_from_env
        from ..store.redis_store import RedisStore

        self._store = await RedisStore(self.store_url, lease_from_env()).open()
        self.shared = self.background.observer = self._store.runs
        return FusionEngine(self.registry, cache=self._store.cache, paces=self._store.paces,
                            limits=self._store.limit)

    def spawn(self, fn: Any, *args: Any) -> None:
        """Run `fn(*args)` in the server's task group (it ends with the server)."""
        if self._groups:
            self._groups[-1].start_soon(fn, *args)

    @property
    def engine(self) -> FusionEngine:
        if self._engine is None:  # only reachable when a tool runs outside the server's lifespan
            raise ToolError("the server is shutting down; call again once it has restarted")
        return self._engine

    def ensemble(self, name: str | None, roles: tuple[str, ...] | None = None) -> Ensemble:
        """The named (or default) ensemble, ready to run (all roles, or only `roles`), or a ToolError
        that says what to do."""
        try:
            ensemble = self.registry.get(name or None)
        except UnknownEnsembleError as exc:
            raise ToolError(f"{exc}. Call list_ensembles to see each one's models and readiness.") from None
        except NoReadyEnsembleError as exc:
            raise ToolError(str(exc)) from None
        except ConfigError as exc:
            raise ToolError(f"ensemble {name!r} cannot be loaded: {exc}. Fix the file, then restart the server.") from None
        if roles != ():
            self.check_ready(ensemble, roles)
        return ensemble

    @staticmethod
    def check_ready(ensemble: Ensemble, roles: tuple[str, ...] | None = None, *, chosen: bool = False) -> None:
        """A ToolError that says what to do when the ensemble (all roles, or only `roles`; `chosen`: with
        the models a call picked) cannot run here: a key not set, a local package not installed."""
        which = f"ensemble {ensemble.name!r}" + (" with the models chosen" if chosen else "")
        instead = "pick models of a ready ensemble" if chosen else "pick a ready ensemble"
        missing = ensemble.missing_keys(roles)
        if missing:
            raise ToolError(
                f"{which} needs {' and '.join(missing)}, which is not set in the server's environment: add it "
                f"to the `env` block of the host's MCP config and restart the server, or {instead} from list_ensembles."
            )
        local = ensemble.missing_local(roles)
        if local:
            raise ToolError(f"{which} cannot run on this machine: {'; '.join(local)}. "
                            f"Install that where the server runs, or {instead} from list_ensembles.")

    async def finished_run(self, run_id: str) -> FusionResult:
        """A finished run's result (for from_run), from this process or the shared store."""
        try:
            return self.runs.get(run_id)
        except UnknownRunError as exc:
            record = await self.shared.find(run_id) if self.shared is not None else None
            if record is None or record.result is None:
                if record is not None:  # known, but running or failed
                    raise ToolError(f"run {run_id!r} has no drafts to reuse yet: it is {record.status}"
                                    + (f" ({record.error})" if record.error else "")) from None
                raise self.unknown_run(exc) from None
            return record.result

    def unknown_run(self, exc: UnknownRunError) -> ToolError:
        """The error for a run id nobody knows: with a shared store, no replica has it."""
        if self.shared is None:
            return ToolError(str(exc))
        return ToolError(f"unknown run id {exc.run_id!r}: no replica sharing this server's store has it (runs "
                         "are kept 24 h); run compare_drafts or fused_answer again to get a fresh run id")

    async def remote_run(self, run_id: str, wait_s: float = 0.0) -> RunRecord | None:
        """A run this process does not hold, from the shared store (waiting up to `wait_s` for it to
        finish); None without a shared store or when the store does not know it."""
        if self.shared is None:
            return None
        return await (self.shared.wait(run_id, wait_s) if wait_s > 0 else self.shared.find(run_id))

    async def start(self, run_id: str, kind: RunKind, ensemble: str, include_drafts: bool, deadline_s: float,
                    work: Work) -> RunHandle:
        """A new run; a burst beyond `max_running` queues for up to half the tool-time limit."""
        try:
            return await self.background.start(run_id, kind, ensemble, include_drafts, deadline_s, work,
                                               queue_s=self.tool_timeout_s / 2)
        except FusionError as exc:
            raise ToolError(str(exc)) from None


def service_of(ctx: Context) -> FusionService:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


def progress_of(ctx: Context) -> ProgressCallback:
    """Engine events as MCP progress notifications (a no-op when the caller sent no token)."""

    async def on_event(event: ProgressEvent) -> None:
        await ctx.report_progress(event.done, event.total, event.message)

    return on_event
