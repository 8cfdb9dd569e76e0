"""The MCP resources: `ensemble://{name}` (an ensemble's TOML) and `run://{run_id}` (a whole run, or
where a running one has got to)."""

import json

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from ..config.ensembles import Ensemble
from ..store.runs import UnknownRunError
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


async def run_resource(run_id: str, ctx: Context) -> str:
    try:  # this process's run, else (a shared store) another replica's
        run = await service_of(ctx).store.runs.find(run_id)
    except UnknownRunError as exc:
        raise ResourceNotFoundError(str(exc)) from None
    if run.result is not None:
        return run.result.model_dump_json(indent=2)
    if not run.finished:
        progress = run.progress.message if run.progress else None
        return json.dumps({"run_id": run_id, "status": "running", "kind": run.kind, "ensemble": run.ensemble,
                           "elapsed_s": run.elapsed_s(), "time_left_s": run.time_left_s(),
                           "progress": progress}, indent=2)
    return json.dumps({"run_id": run_id, "status": "failed", "error": run.error}, indent=2)
