"""Build the MCP server: the tools, the resources, and the service behind them."""

from typing import Any, Literal

from mcp.server.mcpserver.resources import FunctionResource

from .. import __version__
from ..config.ensemble_registry import EnsembleRegistry
from ..config.settings import Settings
from ..fusion.engine import FusionEngine
from ..store.runs import DEFAULT_MAX_RUNS
from ..team.state import TeamState
from .apps_view import apps_extension, tool_meta
from .descriptions import describe
from .host_prompts import PROMPTS, completer
from .resources import ensemble_resource, ensemble_text, run_resource, usage_resource
from .service import DEFAULT_MAX_RUNNING, FusionService
from .surface import FusionMCPServer
from .tasks import TASK_TOOLS
from .tasks import install as install_tasks
from .tools import TOOLS

INSTRUCTIONS = (
    "Ask several LLMs the same question, have one review and compare the drafts and one fuse the answer. "
    "fused_answer for a fused answer with its confidence; compare_drafts for the drafts and the reviewer's "
    "analysis, to write the answer yourself; list_ensembles and list_models to choose models. The models do "
    "not see the conversation: questions must be self-contained. A long run answers status 'running' with a "
    "run_id: call get_run(run_id) until its status is 'done'."
)


def create_server(
    registry: EnsembleRegistry | None = None,
    *,
    engine: FusionEngine | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
    tool_timeout_s: float | None = None,
    max_running: int = DEFAULT_MAX_RUNNING,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
    store_url: str | None = None,
    telemetry: Any = None,
    verifier: Any = None,
    budget_limits: Any = None,
    confirm_over_usd: float | None = None,
    settings: Settings | None = None,
) -> FusionMCPServer:
    """The MCP server over `registry` (default: the user's ensembles). Tests may hand in an engine.
    `tool_timeout_s` (default: the settings', $FUSION_MCP_TOOL_TIMEOUT or 40): the longest a tool call
    waits for a run. `settings` default to the environment's (config/settings.py).
    `store_url` (redis://...): keep runs, the call cache, paces and provider limits there, shared by
    every replica using it (docs/deploy.md); None keeps them in this process. `telemetry` (team.telemetry)
    watches runs and calls; `verifier` (team.oauth.JwtVerifier) signs users in over HTTP; `budget_limits`
    (team.budgets.BudgetLimits) gives them daily budgets (docs/team.md).
    `confirm_over_usd` (default: the settings', $FUSION_MCP_CONFIRM_OVER): ask the user, when the client can, before a
    run whose estimate is over it (confirm.py)."""
    settings = settings or Settings.from_env()
    registry = registry if registry is not None else EnsembleRegistry.load(settings=settings)
    confirm = settings.confirm_over_usd if confirm_over_usd is None else confirm_over_usd
    service = FusionService(registry, engine=engine, max_runs=max_runs, tool_timeout_s=tool_timeout_s,
                            max_running=max_running, store_url=store_url, settings=settings,
                            team=TeamState(telemetry, signs_in=verifier is not None, budget_limits=budget_limits),
                            confirm_over_usd=confirm)
    auth: dict[str, Any] = {}
    if verifier is not None:
        from ..team.oauth import auth_settings

        auth = {"auth": auth_settings(verifier.config), "token_verifier": verifier}
    server = FusionMCPServer("fusion-mcp", version=__version__, instructions=INSTRUCTIONS,
                             lifespan=service.lifespan, log_level=log_level, extensions=[apps_extension()], **auth)
    server.fusion_service = service  # type: ignore[attr-defined]  # for tests and embedding
    server.task_tools = TASK_TOOLS
    install_tasks(server._lowlevel_server)  # the SDK has task types but no task handlers: tasks.py adds them
    for fn, title, annotations in TOOLS:
        server.add_tool(fn, title=title, annotations=annotations,
                        description=describe(fn.__name__, registry, service.pricing), meta=tool_meta(fn.__name__))
    server.resource("ensemble://{name}", name="ensemble", title="Ensemble definition",
                    description="An ensemble's TOML definition.", mime_type="application/toml")(ensemble_resource)
    server.resource("run://{run_id}", name="run", title="Fusion run",
                    description="A run of this server (or a replica sharing its store): drafts, review, synthesis, "
                                "usage.",
                    mime_type="application/json")(run_resource)
    server.resource("usage://{user}", name="usage", title="Usage and budget",
                    description="usage://me: your runs, calls, tokens and cost per day and ensemble, and your budget.",
                    mime_type="application/json")(usage_resource)
    for prompt, prompt_title in PROMPTS:
        server.prompt(title=prompt_title)(prompt)
    server.completion()(completer(registry))
    for name, ens in registry.ensembles.items():  # listed too, so hosts that only list resources find them
        server.add_resource(FunctionResource.from_function(
            fn=lambda ens=ens: ensemble_text(ens), uri=f"ensemble://{name}", name=f"ensemble {name}",
            description=ens.description or None, mime_type="application/toml",
        ))
    return server
