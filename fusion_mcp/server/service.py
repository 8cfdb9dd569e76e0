"""The server's state for its lifespan: the ensembles, one engine, and the runs it has made.

Tools and resources reach it through the lifespan context (`ctx.request_context.lifespan_context`),
as the SDK's example servers do. No `from __future__ import annotations` in the server package:
`mcp run` / `mcp dev` load modules under a fake name, and string annotations on tool return types
then silently lose the outputSchema.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..config.ensemble_registry import EnsembleRegistry
from ..config.ensembles import Ensemble
from ..config.pricing import Pricing
from ..config.settings import Settings
from ..errors import ConfigError, FusionError, NoReadyEnsembleError, UnknownEnsembleError
from ..fusion.engine import FusionEngine
from ..fusion.estimate import Estimate
from ..fusion.events import ProgressCallback, ProgressEvent
from ..fusion.paces import PaceBook, load_priors
from ..fusion.result import FusionResult
from ..store import EmbeddedStore, Store, open_store
from ..store.runs import DEFAULT_MAX_RUNS, RunHandle, UnknownRunError
from ..team.identity import token_of
from ..team.state import TeamState
from .background import BackgroundRuns, Handle, Record, RunKind, Work

DEFAULT_MAX_RUNNING = 128


class FusionService:
    """The SDK enters the lifespan once per stdio or streamable-HTTP server, but once per connection
    for SSE; counting entries keeps one engine (and its HTTP client) while any connection is open."""

    def __init__(self, registry: EnsembleRegistry, *, engine: FusionEngine | None = None,
                 max_runs: int = DEFAULT_MAX_RUNS, tool_timeout_s: float | None = None,
                 max_running: int = DEFAULT_MAX_RUNNING, store_url: str | None = None,
                 settings: Settings | None = None, team: TeamState | None = None,
                 confirm_over_usd: float | None = None) -> None:
        self.registry = registry
        self.settings = settings or Settings.from_env()
        # what estimates and listings price with: the engine's own, so a cap and the calls under it agree
        self.pricing: Pricing = engine.pricing if engine is not None else self.settings.pricing
        self.team = team if team is not None else TeamState()  # users, telemetry, usage, budgets (docs/team.md)
        self.confirm_over_usd = confirm_over_usd  # ask the user (elicitation) above this estimate (confirm.py)
        self.store_url = store_url  # None: the embedded store (this process); else Redis (store/)
        self.max_runs = max_runs
        self._embedded: Store[FusionResult] = EmbeddedStore[FusionResult](max_runs=max_runs)
        self.store: Store[FusionResult] = self._embedded  # the shared one while serving with one
        self.background = BackgroundRuns(self.store.runs, max_running)
        self.tool_timeout_s = tool_timeout_s if tool_timeout_s is not None else self.settings.tool_timeout_s
        self._given_engine = engine
        self._engine: FusionEngine | None = engine
        if engine is not None:
            engine.call.watcher = self.team.telemetry
        if self.team.telemetry.metrics is not None:
            self.team.telemetry.metrics.count_queue(lambda: self.background.queued)
        self._groups: list[TaskGroup] = []

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
                if self.store.shared:
                    group.start_soon(self.store.serve)
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
                    await self.team.aclose()
                    if self.store.shared:
                        store, self.store = self.store, self._embedded
                        self.background.store = self.store.runs
                        await store.aclose()

    async def _open_engine(self) -> FusionEngine:
        """The engine over the embedded store, or over the shared one: its call cache (the server uses
        a cache only when shared), its pace book, its provider limits and its run store."""
        watcher = self.team.telemetry
        if self.store_url is None:
            self.team.open(self.settings.cache_path)
            return FusionEngine.from_settings(self.settings, registry=self.registry, watcher=watcher,
                                              pricing=self.pricing)
        self.store = await open_store(self.store_url, Record, lease_s=self.settings.lease_s, max_runs=self.max_runs)
        self.background.store = self.store.runs
        self.team.open(self.settings.cache_path, getattr(self.store, "client", None),
                       getattr(self.store, "prefix", ""))
        paces = PaceBook(priors=load_priors(str(self.settings.paces) if self.settings.paces else None),
                         store=self.store.paces)
        return FusionEngine.from_settings(self.settings, registry=self.registry, cache=self.store.cache,
                                          paces=paces, limits=self.store.limit, watcher=watcher, pricing=self.pricing)

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
            raise ToolError(f"ensemble {name!r} cannot be loaded: {exc}. "
                            "Fix the file, then restart the server.") from None
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

    async def find_run(self, run_id: str, wait_s: float = 0.0, *, token: Any = None) -> Handle | Record:
        """A run by id: this process's, else (a shared store) another replica's, waited for up to `wait_s`;
        a ToolError that says what to do when nobody has it. The caller (`token`, its verified OAuth token;
        default the current request's) must be the run's owner or an admin: anyone else is told exactly
        what an unknown id gets, before any wait (so the time taken tells nothing either)."""
        try:
            return await self.locate(run_id, wait_s, token=token if token is not None else token_of())
        except UnknownRunError as exc:
            raise ToolError(str(exc)) from None

    async def locate(self, run_id: str, wait_s: float = 0.0, *, token: Any) -> Handle | Record:
        """find_run's lookup for surfaces with their own error (MCP tasks): UnknownRunError for a run nobody
        has and for another user's run alike, raised before any wait."""
        runs = self.store.runs
        run = await runs.find(run_id)
        if not self.team.may_see(run.owner, token):
            raise runs.unknown(run_id)
        if wait_s > 0 and not run.finished and not isinstance(run, RunHandle):
            run = await runs.find(run_id, wait_s)
        return run

    async def finished_run(self, run_id: str, *, token: Any = None) -> FusionResult:
        """A finished run's result (for from_run), from this process or the shared store."""
        run = await self.find_run(run_id, token=token)
        if run.result is None:
            state = "running" if not run.finished else "failed"
            raise ToolError(f"run {run_id!r} has no drafts to reuse yet: it is {state}"
                            + (f" ({run.error})" if run.error else ""))
        return run.result

    async def admit(self, owner: str | None, run_id: str, estimate: Callable[[], Estimate], deadline_s: float,
                    max_cost_usd: float | None) -> float | None:
        """Check `owner`'s daily budget (team/state.py) before any call; the spending cap the run runs under."""
        try:
            return await self.team.admit(owner, run_id, estimate, deadline_s, max_cost_usd)
        except FusionError as exc:
            raise ToolError(str(exc)) from None

    async def start(self, run_id: str, kind: RunKind, ensemble: str, include_drafts: bool, deadline_s: float,
                    work: Work, *, owner: str | None = None, question: str | None = None) -> Handle:
        """A new run of `owner` (the signed-in user, if any), watched (metrics, spans, audit, usage); a
        burst beyond `max_running` queues for up to half the tool-time limit."""
        try:
            return await self.launch(run_id, kind, ensemble, include_drafts, deadline_s, work, owner=owner,
                                     question=question)
        except FusionError as exc:
            raise ToolError(str(exc)) from None

    async def launch(self, run_id: str, kind: RunKind, ensemble: str, include_drafts: bool, deadline_s: float,
                     work: Work, *, owner: str | None = None, question: str | None = None) -> Handle:
        """`start`, raising the run's own error (TooManyRunsError, shutting down) for a surface that
        answers each in its own way (the model API: 429, 503)."""
        work = self.team.telemetry.wrap(work, run_id=run_id, kind=kind, ensemble=ensemble, user=owner,
                                        question=question)
        try:
            return await self.background.start(run_id, kind, ensemble, include_drafts, deadline_s, work,
                                               queue_s=self.tool_timeout_s / 2, owner=owner)
        except FusionError:
            await self.team.release(run_id)
            raise


def service_of(ctx: Context) -> FusionService:
    return cast(FusionService, ctx.request_context.lifespan_context)


def progress_of(ctx: Context) -> ProgressCallback:
    """Engine events as MCP progress notifications (a no-op when the caller sent no token)."""

    async def on_event(event: ProgressEvent) -> None:
        await ctx.report_progress(event.done, event.total, event.message)

    return on_event
