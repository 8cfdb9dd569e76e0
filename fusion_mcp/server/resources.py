"""The MCP resources: `ensemble://{name}` (an ensemble's TOML) and `run://{run_id}` (a whole run)."""

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from ..config.ensembles import Ensemble
from .runs import UnknownRunError
from .service import service_of


def ensemble_text(ensemble: Ensemble) -> str:
    if ensemble.path is not None and ensemble.path.is_file():
        return ensemble.path.read_text(encoding="utf-8")
    lines = [f"# ensemble {ensemble.name} (built in code, no file)", f"deadline_s = {ensemble.deadline_s:g}"]
    lines += [f"# {role}: {r.ref}" for role, r in ensemble.roles]
    return "\n".join(lines) + "\n"


def ensemble_resource(name: str, ctx: Context) -> str:
    registry = service_of(ctx).registry
    ens = registry.ensembles.get(name)
    if ens is None:
        raise ResourceNotFoundError(f"unknown ensemble {name!r}; available: {', '.join(registry.names())}")
    return ensemble_text(ens)


def run_resource(run_id: str, ctx: Context) -> str:
    try:
        return service_of(ctx).runs.get(run_id).model_dump_json(indent=2)
    except UnknownRunError as exc:
        raise ResourceNotFoundError(str(exc)) from None
