"""MCP tasks (protocol 2025-11-25) for clients that negotiate them: a task per run.

A client that sends `tools/call` with `params.task` for fused_answer or compare_drafts gets a
`CreateTaskResult` at once (the task id is the run id), then polls `tasks/get`, reads the answer with
`tasks/result` (which waits for the run), and may `tasks/list` and `tasks/cancel`. The task's state is
the run's (background.py, or a replica's record through the shared store), so any replica sharing
the store answers `tasks/get` and `tasks/result`. Clients without tasks keep start-then-poll (get_run).

Built on the SDK's seams: a server middleware turns a task-augmented `tools/call` into a task (the
SDK's own `tools/call` path only knows `CallToolResult`) and adds the `tasks` capability to the
handshake; the four `tasks/*` methods are request handlers (`Server.add_request_handler`).
"""

import contextvars
import logging
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    CallToolResult,
    CancelTaskRequestParams,
    GetTaskPayloadRequestParams,
    GetTaskRequestParams,
    PaginatedRequestParams,
    Task,
    TaskMetadata,
    TaskStatus,
    TaskStatusNotification,
    TaskStatusNotificationParams,
    TextContent,
)

from ..store.runs import CANCELLED_ERROR, RunHandle, RunRecord, UnknownRunError
from ..team.identity import token_of
from .background import Handle, Record
from .service import FusionService

log = logging.getLogger("fusion_mcp")
TASKS_VERSION = "2025-11-25"  # tasks are core in this revision; an extension (not served here) after it
TASK_TOOLS = frozenset({"fused_answer", "compare_drafts"})
RELATED_TASK = "io.modelcontextprotocol/related-task"
DEFAULT_TTL_MS = 3_600_000  # an hour unless the client asks otherwise
MAX_TTL_MS = 86_400_000  # the shared store keeps runs 24 h
POLL_INTERVAL_MS = 2000
CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}

# The `task` of the tools/call being handled, for the tool to start its run and return at once.
task_request: contextvars.ContextVar[TaskMetadata | None] = contextvars.ContextVar("task_request", default=None)

Run = Handle | Record


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat().replace("+00:00", "Z")


def ttl_of(meta: TaskMetadata) -> int:
    """The retention granted: what the client asked for, at most what the run store keeps."""
    return max(1000, min(meta.ttl or DEFAULT_TTL_MS, MAX_TTL_MS))


def task_of(run: Run) -> Task:
    """The task view of a run, here or on another replica."""
    status: TaskStatus
    if not run.finished:
        status, message = "working", (run.progress.message if run.progress else None) or "started"
    elif run.result is not None:
        status, message = "completed", None
    elif run.error == CANCELLED_ERROR:
        status, message = "cancelled", run.error
    else:
        status, message = "failed", run.error
    started = run.started_at if isinstance(run, RunRecord) else run.started_wall
    updated = run.updated_wall if isinstance(run, RunHandle) else started + run.elapsed_s()
    return Task(task_id=run.run_id, status=status, status_message=message, created_at=_iso(started),
                last_updated_at=_iso(updated), ttl=run.task_ttl_ms or DEFAULT_TTL_MS,
                poll_interval=POLL_INTERVAL_MS)


def _not_found(task_id: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: unknown task id {task_id!r} (expired, "
                                                 "or made by a server that does not share this one's store)")


async def _find(service: FusionService, task_id: str, wait_s: float = 0.0, *, token: Any = None) -> Run:
    """The run behind a task: here, or on a replica sharing the store (waited for up to `wait_s`);
    expired tasks are gone, and another user's task (team/identity.py) is as unknown as a made-up id."""
    try:
        run = await service.locate(task_id, wait_s, token=token)
    except UnknownRunError:
        raise _not_found(task_id) from None
    if isinstance(run, RunHandle) and wait_s > 0:
        await service.background.wait(run, wait_s, None, cancel_with_caller=False)
    if run.task_ttl_ms is None:
        raise _not_found(task_id)
    created = run.started_at if isinstance(run, RunRecord) else run.started_wall
    if datetime.now(UTC).timestamp() - created > run.task_ttl_ms / 1000:
        raise _not_found(task_id)
    return run


def _token(ctx: ServerRequestContext[Any, Any]) -> Any:
    """The caller's verified token (None when the server signs no one in)."""
    return token_of(getattr(ctx, "request", None))


def _service(ctx: ServerRequestContext[Any, Any]) -> FusionService:
    service: FusionService = ctx.lifespan_context
    return service


async def get_task(ctx: ServerRequestContext[Any, Any], params: GetTaskRequestParams) -> HandlerResult:
    run = await _find(_service(ctx), params.task_id, token=_token(ctx))
    return task_of(run).model_dump(by_alias=True, mode="json", exclude_none=True)


async def list_tasks(ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams) -> HandlerResult:
    """The tasks this server process holds (a replica lists its own; any replica answers tasks/get)."""
    service = _service(ctx)
    tasks = []
    token = _token(ctx)
    for handle in service.store.runs.kept():
        try:
            task = task_of(await _find(service, handle.run_id, token=token))
            tasks.append(task.model_dump(by_alias=True, mode="json", exclude_none=True))
        except MCPError:
            continue  # not a task, or expired
    return {"tasks": tasks}


async def cancel_task(ctx: ServerRequestContext[Any, Any], params: CancelTaskRequestParams) -> HandlerResult:
    service = _service(ctx)
    run = await _find(service, params.task_id, token=_token(ctx))
    if run.finished:
        raise MCPError(code=INVALID_PARAMS, message=f"Cannot cancel task {params.task_id!r}: it is already "
                                                    f"{task_of(run).status}")
    if not isinstance(run, RunHandle):
        raise MCPError(code=INVALID_PARAMS, message=f"Cannot cancel task {params.task_id!r} from here: it runs on "
                                                    "another replica; cancel it through the connection that made it")
    run.cancel()
    await service.background.wait(run, 5.0, None, cancel_with_caller=False)
    return task_of(run).model_dump(by_alias=True, mode="json", exclude_none=True)


async def task_result(ctx: ServerRequestContext[Any, Any], params: GetTaskPayloadRequestParams) -> HandlerResult:
    """The tool's result once the run is over (waiting for it, as the spec asks), in the tool's shape."""
    from .tools import run_result  # tools imports this module

    service = _service(ctx)
    token = _token(ctx)
    run = await _find(service, params.task_id, token=token)
    while not run.finished:
        run = await _find(service, params.task_id, wait_s=max(1.0, run.time_left_s() + 10), token=token)
    if run.result is not None:
        result = run_result(run, service.tool_timeout_s)
    else:
        result = CallToolResult(content=[TextContent(type="text", text=run.error or "the run failed")], is_error=True)
    out = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    out["_meta"] = {**out.get("_meta", {}), RELATED_TASK: {"taskId": run.run_id}}
    return out


async def _tell_when_done(ctx: ServerRequestContext[Any, Any], handle: Handle) -> None:
    """notifications/tasks/status once the run ends (optional in the spec; clients still poll)."""
    await handle.done.wait()
    params = TaskStatusNotificationParams(**task_of(handle).model_dump())
    try:
        await ctx.session.send_notification(TaskStatusNotification(params=params))  # type: ignore[arg-type]
    except Exception as exc:  # the client may have gone; it polls anyway
        log.debug("task status for %s not sent: %s", handle.run_id, exc)


async def tasks_middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Advertise tasks in the 2025-11-25 handshake; answer a task-augmented tools/call with a task."""
    if ctx.method == "initialize":
        result = await call_next(ctx)
        if isinstance(result, dict) and result.get("protocolVersion") == TASKS_VERSION:
            result["capabilities"] = {**result.get("capabilities", {}), "tasks": CAPABILITY}
        return result
    if ctx.method == "tools/list" and ctx.protocol_version != TASKS_VERSION:
        result = await call_next(ctx)  # `execution` means nothing to a client of another revision
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            result["tools"] = [{k: v for k, v in t.items() if k != "execution"} for t in result["tools"]]
        return result
    params = ctx.params or {}
    if ctx.method != "tools/call" or "task" not in params or ctx.protocol_version != TASKS_VERSION:
        return await call_next(ctx)  # later revisions carry tasks as an extension, not served: run inline
    name = params.get("name")
    if name not in TASK_TOOLS:
        raise MCPError(code=METHOD_NOT_FOUND, message=f"tool {name!r} does not run as a task (taskSupport "
                                                      "'forbidden'); call it without `task`")
    meta = TaskMetadata.model_validate(params.get("task") or {})
    token = task_request.set(meta)
    try:
        result = await call_next(ctx)
    finally:
        task_request.reset(token)
    out = result if isinstance(result, dict) else {}
    if out.get("isError"):  # refused before any run started: bad arguments, unknown ensemble, no key
        text = " ".join(c.get("text", "") for c in out.get("content", []) if isinstance(c, dict))
        raise MCPError(code=INVALID_PARAMS, message=text or f"{name} refused the call")
    run_id = (out.get("structuredContent") or {}).get("run_id")
    service = _service(ctx)
    handle = service.store.runs.local(run_id) if isinstance(run_id, str) else None
    if handle is None:
        raise MCPError(code=INVALID_PARAMS, message=f"{name} did not start a run")
    service.spawn(_tell_when_done, ctx, handle)
    return {"task": task_of(handle).model_dump(by_alias=True, mode="json", exclude_none=True)}


def install(lowlevel: Any) -> None:
    """Add the tasks middleware and the four `tasks/*` methods to the SDK's low-level server."""
    lowlevel.middleware.append(tasks_middleware)
    lowlevel.add_request_handler("tasks/get", GetTaskRequestParams, get_task)
    lowlevel.add_request_handler("tasks/result", GetTaskPayloadRequestParams, task_result)
    lowlevel.add_request_handler("tasks/list", PaginatedRequestParams, list_tasks)
    lowlevel.add_request_handler("tasks/cancel", CancelTaskRequestParams, cancel_task)
