"""The MCP surface: three tools, two resource kinds, progress, errors, and the `serve` command.

Thin over the engine: every tool resolves an ensemble, runs the engine, and turns its result
into a compact model (fusion_mcp/mcp_tools.py). One FusionEngine (one HTTP client, one set of
per-provider concurrency limits) serves every call for the life of the server.

No `from __future__ import annotations` here: see the note in mcp_tools.py.
"""

import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from . import __version__
from .engine import CallCache, FusionEngine
from .ensembles import Ensemble, EnsembleRegistry
from .errors import ConfigError, FusionError, NoDraftsError, UnknownEnsembleError
from .fusion.events import ProgressCallback, ProgressEvent
from .fusion.result import FusionResult
from .http_auth import BearerAuthMiddleware, transport_security
from .mcp_tools import (
    Comparison,
    EnsembleList,
    FusedAnswer,
    comparison_of,
    ensemble_list_of,
    fused_answer_of,
)
from .run_store import DEFAULT_MAX_RUNS, RunStore, UnknownRunError

# A run has its own deadline; this is the safety net on top, for a stage that overruns it.
DEADLINE_GRACE_S = 5.0
MAX_DEADLINE_S = 600.0

INSTRUCTIONS = (
    "Ask several LLMs the same question, have one review the drafts and one fuse the answer. "
    "list_ensembles shows the model sets and whether their API keys are set."
)

MODEL_CALLING = ToolAnnotations(read_only_hint=True, open_world_hint=True)


class FusionService:
    """The server's state: the registry, one engine for its lifespan, and the runs it has made.

    The SDK enters the lifespan once per stdio or streamable-HTTP server, but once per connection
    for SSE; counting entries keeps one engine (and its HTTP client) while any connection is open.
    """

    def __init__(
        self,
        registry: EnsembleRegistry,
        *,
        engine: FusionEngine | None = None,
        cache: CallCache | None = None,
        max_runs: int = DEFAULT_MAX_RUNS,
    ) -> None:
        self.registry = registry
        self.runs = RunStore(max_runs)
        self._cache = cache
        self._given_engine = engine
        self._engine: FusionEngine | None = engine
        self._users = 0

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator[None]:
        if self._engine is None:
            self._engine = FusionEngine(self.registry, cache=self._cache)
        self._users += 1
        try:
            yield None
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

    # -- helpers shared by the tools -------------------------------------------------------

    def ensemble(self, name: str | None, roles: tuple[str, ...] | None = None) -> Ensemble:
        """The named (or default) ensemble, ready to run (all roles, or only `roles`), or a ToolError
        that says what to do."""
        try:
            ensemble = self.registry.get(name or None)
        except UnknownEnsembleError as exc:
            raise ToolError(f"{exc}. Call list_ensembles to see each one's models and readiness.") from None
        except ConfigError as exc:
            raise ToolError(f"ensemble {name!r} cannot be loaded: {exc}. Fix the file, then restart the server.") from None
        missing = ensemble.missing_keys(roles)
        if missing:
            raise ToolError(
                f"ensemble {ensemble.name!r} needs {' and '.join(missing)}, which is not set in the server's "
                "environment: add it to the `env` block of the host's MCP config and restart the server, "
                "or pick a ready ensemble from list_ensembles."
            )
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

    @staticmethod
    def progress(ctx: Context) -> ProgressCallback:
        """Engine events as MCP progress notifications (a no-op when the caller sent no token)."""

        async def on_event(event: ProgressEvent) -> None:
            await ctx.report_progress(event.done, event.total, event.message)

        return on_event


def _tool_result(model: BaseModel) -> CallToolResult:
    """Structured content for hosts that read it; the same as one-line JSON without nulls for the rest.

    The SDK's default text block is indented JSON, which costs the host's context a third more.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=model.model_dump_json(exclude_none=True))],
        structured_content=model.model_dump(mode="json"),
    )


def _ensemble_text(ensemble: Ensemble) -> str:
    if ensemble.path is not None and ensemble.path.is_file():
        return ensemble.path.read_text(encoding="utf-8")
    lines = [f"# ensemble {ensemble.name} (built in code, no file)", f"deadline_s = {ensemble.deadline_s:g}"]
    lines += [f"# {role}: {r.ref}" for role, r in ensemble.roles]
    return "\n".join(lines) + "\n"


def create_server(
    registry: EnsembleRegistry | None = None,
    *,
    engine: FusionEngine | None = None,
    cache: CallCache | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
    ensemble_dirs: list[str] | None = None,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
) -> MCPServer:
    """Build the MCP server. Tests pass their own registry (or engine); `serve` loads the user's."""
    registry = registry if registry is not None else EnsembleRegistry.load(ensemble_dirs or [])
    service = FusionService(registry, engine=engine, cache=cache, max_runs=max_runs)
    server: MCPServer = MCPServer("fusion-mcp", version=__version__, instructions=INSTRUCTIONS,
                                  lifespan=service.lifespan, log_level=log_level)
    server.fusion_service = service  # type: ignore[attr-defined]  # for tests and embedding

    Question = Annotated[str, Field(min_length=1, max_length=100_000, description="The question to answer.")]
    EnsembleName = Annotated[str | None, Field(description="Ensemble from list_ensembles; omit for the default.")]
    Background = Annotated[str | None, Field(max_length=400_000, description="Background text the models should use.")]

    @server.tool(title="Fused answer", annotations=MODEL_CALLING)
    async def fused_answer(
        question: Question,
        ctx: Context,
        ensemble: EnsembleName = None,
        context: Background = None,
        deadline_s: Annotated[float | None, Field(
            gt=0, le=MAX_DEADLINE_S, description="Whole-run deadline in seconds; default the ensemble's (45)."
        )] = None,
        include_drafts: Annotated[bool, Field(description="Also return each draft's text.")] = False,
        from_run: Annotated[str | None, Field(
            description="run_id of an earlier compare_drafts: fuse its drafts without drafting again."
        )] = None,
    ) -> Annotated[CallToolResult, FusedAnswer]:
        """Answer with several models at once: parallel drafts, a review, one synthesized answer, with per-model status, weights, cost and time."""  # noqa: E501
        if from_run:
            try:
                previous = service.runs.get(from_run)
            except UnknownRunError as exc:
                raise ToolError(str(exc)) from None
            if question.strip() != previous.question.strip():
                raise ToolError(
                    f"run {from_run!r} answered a different question ({previous.question[:80]!r}); "
                    "pass that same question with from_run, or omit from_run to draft afresh."
                )
            if context and (context.strip() != (previous.context or "").strip()):
                raise ToolError(
                    f"run {from_run!r} drafted with {'another' if previous.context else 'no'} context, and "
                    "from_run reuses those drafts: omit context, or omit from_run to draft afresh with it."
                )
            ens = service.ensemble(ensemble or previous.ensemble, roles=("synthesizer",))  # drafts are reused
            deadline = deadline_s or ens.deadline_s
            work = service.engine.synthesize_from(previous, ensemble=ens, deadline_s=deadline,
                                                  on_event=service.progress(ctx))
        else:
            ens = service.ensemble(ensemble)
            deadline = deadline_s or ens.deadline_s
            work = service.engine.fuse(question, ensemble=ens, context=context, deadline_s=deadline,
                                       on_event=service.progress(ctx))
        result = await service.run(deadline, work)
        return _tool_result(fused_answer_of(result, include_drafts))

    @server.tool(title="Compare drafts", annotations=MODEL_CALLING)
    async def compare_drafts(
        question: Question,
        ctx: Context,
        ensemble: EnsembleName = None,
        context: Background = None,
    ) -> Annotated[CallToolResult, Comparison]:
        """Drafts from several models side by side, with review scores, reasons and agreement; no synthesis. Returns a run_id that fused_answer(from_run=...) can fuse later."""  # noqa: E501
        ens = service.ensemble(ensemble)
        work = service.engine.fuse(question, ensemble=ens, context=context, on_event=service.progress(ctx),
                                   synthesize=False)
        return _tool_result(comparison_of(await service.run(ens.deadline_s, work)))

    @server.tool(title="List ensembles", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def list_ensembles() -> Annotated[CallToolResult, EnsembleList]:
        """Ensembles: their models and roles, whether their API keys are set, deadline and estimated cost."""
        return _tool_result(ensemble_list_of(service.registry))

    @server.resource("ensemble://{name}", name="ensemble", title="Ensemble definition",
                     description="An ensemble's TOML definition.", mime_type="application/toml")
    def ensemble_resource(name: str) -> str:
        ens = registry.ensembles.get(name)
        if ens is None:
            raise ResourceNotFoundError(f"unknown ensemble {name!r}; available: {', '.join(registry.names())}")
        return _ensemble_text(ens)

    for name, ens in registry.ensembles.items():  # listed too, so hosts that only list resources find them
        server.add_resource(FunctionResource.from_function(
            fn=lambda ens=ens: _ensemble_text(ens), uri=f"ensemble://{name}", name=f"ensemble {name}",
            description=ens.description or None, mime_type="application/toml",
        ))

    @server.resource("run://{run_id}", name="run", title="Fusion run",
                     description="A run of this server process: drafts, review, synthesis, usage.",
                     mime_type="application/json")
    def run_resource(run_id: str) -> str:
        try:
            return service.runs.get(run_id).model_dump_json(indent=2)
        except UnknownRunError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    return server


async def serve_http(server: MCPServer, transport: str, host: str, port: int, token: str | None,
                     allowed_hosts: list[str]) -> None:
    """Serve over SSE or streamable HTTP with uvicorn, behind the bearer-token check when a token is set."""
    import uvicorn

    security = transport_security(host, allowed_hosts)
    if transport == "sse":
        app: Any = server.sse_app(host=host, transport_security=security)
        path = "/sse"
    else:
        app = server.streamable_http_app(host=host, transport_security=security)
        path = "/mcp"
    if token:
        app = BearerAuthMiddleware(app, token)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token (loopback only)"
    print(f"fusion-mcp {__version__}: {transport} on http://{shown}:{port}{path} ({auth})", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
