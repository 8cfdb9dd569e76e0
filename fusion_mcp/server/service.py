"""The server's state for its lifespan: the ensembles, one engine, and the runs it has made.

Tools and resources reach it through the lifespan context (`ctx.request_context.lifespan_context`),
as the SDK's example servers do. No `from __future__ import annotations` in the server package:
`mcp run` / `mcp dev` load modules under a fake name, and string annotations on tool return types
then silently lose the outputSchema.
"""

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..config.ensembles import Ensemble, EnsembleRegistry
from ..errors import ConfigError, FusionError, NoDraftsError, NoReadyEnsembleError, UnknownEnsembleError
from ..fusion.engine import FusionEngine
from ..fusion.events import ProgressCallback, ProgressEvent
from ..fusion.result import FusionResult
from .runs import DEFAULT_MAX_RUNS, RunStore

# A run has its own deadline; this is the safety net on top, for a stage that overruns it.
DEADLINE_GRACE_S = 5.0


class FusionService:
    """The SDK enters the lifespan once per stdio or streamable-HTTP server, but once per connection
    for SSE; counting entries keeps one engine (and its HTTP client) while any connection is open."""

    def __init__(self, registry: EnsembleRegistry, *, engine: FusionEngine | None = None,
                 max_runs: int = DEFAULT_MAX_RUNS) -> None:
        self.registry = registry
        self.runs = RunStore(max_runs)
        self._given_engine = engine
        self._engine: FusionEngine | None = engine
        self._users = 0

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator["FusionService"]:
        if self._engine is None:
            self._engine = FusionEngine(self.registry)
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0 and self._given_engine is None and self._engine is not None:
                engine, self._engine = self._engine, None
                with anyio.CancelScope(shield=True):
                    await engine.aclose()

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
        missing = ensemble.missing_keys(roles)
        if missing:
            raise ToolError(
                f"ensemble {ensemble.name!r} needs {' and '.join(missing)}, which is not set in the server's "
                "environment: add it to the `env` block of the host's MCP config and restart the server, "
                "or pick a ready ensemble from list_ensembles."
            )
        local = ensemble.missing_local(roles)
        if local:
            raise ToolError(f"ensemble {ensemble.name!r} cannot run on this machine: {'; '.join(local)}. "
                            "Install that where the server runs, or pick a ready ensemble from list_ensembles.")
        return ensemble

    async def run(self, deadline_s: float, work: Awaitable[FusionResult]) -> FusionResult:
        """Run one engine call under the deadline's safety net, turning failures into tool errors."""
        try:
            with anyio.move_on_after(deadline_s + DEADLINE_GRACE_S) as scope:
                result: FusionResult = await work
        except NoDraftsError as exc:
            reasons = "; ".join(f"{model}: {why}" for model, why in exc.reasons.items())
            raise ToolError(
                f"every draft of ensemble {exc.ensemble!r} failed ({reasons}). Check the keys and model ids "
                "(list_ensembles), raise deadline_s if they timed out, or try another ensemble."
            ) from None
        except FusionError as exc:
            raise ToolError(str(exc)) from None
        if scope.cancelled_caught:
            raise ToolError(
                f"the run did not finish within its {deadline_s:g} s deadline (+{DEADLINE_GRACE_S:g} s); "
                "its model calls were cancelled. Try a faster ensemble or a shorter question."
            )
        self.runs.put(result)
        return result


def service_of(ctx: Context) -> FusionService:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


def progress_of(ctx: Context) -> ProgressCallback:
    """Engine events as MCP progress notifications (a no-op when the caller sent no token)."""

    async def on_event(event: ProgressEvent) -> None:
        await ctx.report_progress(event.done, event.total, event.message)

    return on_event
