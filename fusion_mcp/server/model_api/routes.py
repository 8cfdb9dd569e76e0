"""The model API's routes, mounted in the MCP app on the same port and behind the same guards (the static
token, or with OAuth the SDK's token check that /mcp has): `GET /v1/models[/{id}]`,
`POST /v1/chat/completions` (OpenAI), `POST /v1/messages` (Anthropic).

A request is answered plain (once the run is done: up to its deadline) or as a stream (the synthesis
as it is written, keep-alives while the panel drafts). Either way the run is cancelled, and its
upstream requests closed, as soon as the client hangs up.
"""

from __future__ import annotations

from typing import Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ...fusion.result import FusionResult
from ...team.identity import token_of, user_of
from ..background import Handle
from ..service import FusionService
from .anthropic_face import AnthropicFace
from .asgi import EventStream, read_json, send_json, watch_disconnect
from .asks import Ask
from .errors import ApiError, Wire
from .meta import result_headers, start_headers, why_replaced
from .models import listing, one_model
from .openai_face import OpenAIFace
from .runner import ApiRun


class Face(Protocol):
    wire: Wire

    def parse(self, body: dict[str, Any]) -> Ask: ...
    def response(self, run: ApiRun, result: FusionResult) -> dict[str, Any]: ...
    async def opened(self, out: EventStream, run: ApiRun) -> None: ...
    async def keepalive(self, out: EventStream, run: ApiRun, progress: str) -> None: ...
    async def text(self, out: EventStream, run: ApiRun, text: str) -> None: ...
    async def finished(self, out: EventStream, run: ApiRun, result: FusionResult) -> None: ...
    async def failed(self, out: EventStream, run: ApiRun, error: ApiError) -> None: ...


FACES: dict[str, Face] = {"/v1/chat/completions": OpenAIFace(), "/v1/messages": AnthropicFace()}


def progress_of(handle: Handle) -> str:
    ev = handle.progress
    step = f"{ev.done}/{ev.total} steps done, last {ev.message}" if ev else "drafting"
    return f"{step}; {handle.time_left_s():g} s left of its deadline"


def mount_model_api(app: Starlette, server: Any) -> None:
    """Add `/v1/...` to the SDK's streamable-HTTP app. Inside it, a request passes the middleware the SDK
    puts there: with OAuth (`serve --oauth-issuer`), its token check, required here as /mcp requires it."""
    api: ASGIApp = ModelAPI(server.fusion_service)
    auth = server.settings.auth
    if auth is not None:
        from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
        from mcp.server.auth.routes import build_resource_metadata_url

        metadata = build_resource_metadata_url(auth.resource_server_url) if auth.resource_server_url else None
        api = RequireAuthMiddleware(api, auth.required_scopes or [], metadata)
    app.router.routes.append(Route("/v1/{rest:path}", endpoint=api))


class ModelAPI:
    """Answers every `/v1/...` request."""

    def __init__(self, service: FusionService) -> None:
        self.service = service
        self.keepalive_s = service.settings.keepalive_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        face = FACES.get(path)
        wire: Wire = "anthropic" if path == "/v1/messages" or _anthropic_client(scope) else "openai"
        method = scope.get("method", "GET")
        try:
            if path == "/v1/models" and method == "GET":
                await send_json(send, 200, listing(self.service.registry))
            elif path.startswith("/v1/models/") and method == "GET":
                await send_json(send, 200, one_model(path[len("/v1/models/"):], self.service.registry))
            elif face is not None and method == "POST":
                await self._chat(face, scope, receive, send)
            elif face is not None or path.startswith("/v1/models"):
                raise ApiError(405, f"{method} {path} is not served: use {'GET' if face is None else 'POST'}",
                               code="method_not_allowed")
            else:
                raise ApiError(404, f"no route {path}: this server answers GET /v1/models, POST /v1/chat/completions "
                                    "and POST /v1/messages", "not_found_error", code="unknown_route")
        except ApiError as err:
            await send_json(send, err.status, err.body(face.wire if face else wire), err.headers())

    async def _chat(self, face: Face, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything that can be refused is, before the first byte; then the run, plain or streamed.
        With OAuth the run belongs to the signed-in user (get_run answers only them) and counts against
        their daily budget."""
        run = ApiRun(self.service, face.parse(await read_json(receive)), owner=user_of(token_of(scope)))
        handle = await run.start()

        async with anyio.create_task_group() as group:
            def gone() -> None:  # the client hung up: the run is cancelled, its upstream requests closed
                handle.scope.cancel()
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect, receive, gone)
            if run.ask.stream:
                await self._stream(face, run, handle, send)
            else:
                await handle.done.wait()  # the run's own deadline (plus a grace) bounds this
                if handle.result is None:
                    err = run.error_of(handle)
                    headers = {**err.headers(), **start_headers(run.run_id, handle.ensemble)}
                    await send_json(send, err.status, err.body(face.wire), headers)
                else:
                    await send_json(send, 200, face.response(run, handle.result), result_headers(handle.result))
            group.cancel_scope.cancel()

    async def _stream(self, face: Face, run: ApiRun, handle: Handle, send: Send) -> None:
        out = EventStream(send)
        await out.open(start_headers(run.run_id, handle.ensemble))
        await face.opened(out, run)
        while not (run.feed.closed or handle.finished):
            woke = await run.feed.wait(self.keepalive_s)
            text = run.feed.take()
            if text:
                await face.text(out, run, text)
            elif not woke:
                await face.keepalive(out, run, progress_of(handle))
        await handle.done.wait()
        result = handle.result
        if result is None:
            await face.failed(out, run, run.error_of(handle))
        else:
            rest = run.feed.rest(result.answer or "", why_replaced(result))
            if rest:
                await face.text(out, run, rest)
            await face.finished(out, run, result)
        await out.close()


def _anthropic_client(scope: Scope) -> bool:
    """Errors outside /v1/messages in Anthropic's shape for Anthropic's clients (they send its version header)."""
    return any(name == b"anthropic-version" for name, _ in scope.get("headers", []))
