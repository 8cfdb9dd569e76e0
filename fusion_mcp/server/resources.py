"""The MCP resources: `ensemble://{name}` (an ensemble's TOML), `run://{run_id}` (a whole run, or
where a running one has got to; only its owner's) and `usage://me` (the caller's usage and budget)."""

import json

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError

from ..config.ensembles import Ensemble
from ..config.files import UnreadableFile, read_config_bytes
from ..team.identity import is_admin, token_of, user_of
from ..team.usage import ANONYMOUS
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
    try:  # this process's run, else (a shared store) another replica's; only the caller's own
        run = await service_of(ctx).find_run(run_id, token=token_of(ctx))
    except ToolError as exc:
        raise ResourceNotFoundError(str(exc)) from None
    if run.result is not None:
        return run.result.model_dump_json(indent=2)
    if not run.finished:
        progress = run.progress.message if run.progress else None
        return json.dumps({"run_id": run_id, "status": "running", "kind": run.kind, "ensemble": run.ensemble,
                           "elapsed_s": run.elapsed_s(), "time_left_s": run.time_left_s(),
                           "progress": progress}, indent=2)
    return json.dumps({"run_id": run_id, "status": "failed", "error": run.error}, indent=2)


async def usage_resource(user: str, ctx: Context) -> str:
    """`usage://me`: the signed-in caller's usage and budget; another user's only for an admin."""
    token = token_of(ctx)
    me = user_of(token) or ANONYMOUS
    who = me if user == "me" else user
    if who != me and not is_admin(token):
        raise ResourceNotFoundError(f"usage://{user} is not yours to read: read usage://me")
    return json.dumps(await service_of(ctx).team.usage_of(who), indent=2)
