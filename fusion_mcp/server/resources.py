"""The MCP resources: `ensemble://{name}` (an ensemble's TOML) and `run://{run_id}` (a whole run, or
where a running one has got to)."""

import json

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from ..config.ensembles import Ensemble
from ..config.files import UnreadableFile, read_config_bytes
from .background import RunHandle
from .run_record import RunRecord
from .runs import UnknownRunError
from .service import service_of


def ensemble_text(ensemble: Ensemble) -> str:
    if ensemble.path is not None:
        try:
            return read_config_bytes(ensemble.path).decode("utf-8", "replace")
        except UnreadableFile:
            pass  # changed since it loaded: describe what was loaded
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
    service = service_of(ctx)
    handle: RunHandle | RunRecord | None = service.background.handles.get(run_id)
    if handle is None:  # executing, or executed, on another replica (a shared store), else None
        handle = await service.remote_run(run_id)
        if handle is not None and handle.result is not None:
            return handle.result.model_dump_json(indent=2)
    if handle is not None and not handle.finished:
        ev = handle.last_event
        return json.dumps({"run_id": run_id, "status": "running", "kind": handle.kind, "ensemble": handle.ensemble,
                           "elapsed_s": handle.elapsed_s(), "time_left_s": handle.time_left_s(),
                           "progress": ev.message if ev else None}, indent=2)
    if handle is not None and handle.error is not None:
        return json.dumps({"run_id": run_id, "status": "failed", "error": handle.error}, indent=2)
    try:
        return service.runs.get(run_id).model_dump_json(indent=2)
    except UnknownRunError as exc:
        raise ResourceNotFoundError(str(service.unknown_run(exc))) from None
