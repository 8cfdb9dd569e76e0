"""A JSON-RPC request the SDK would drop without a word gets its error: an `id` that is neither a
string nor an integer (an object, a list, a boolean, a fraction, or null, which MCP forbids) is
answered HTTP 400 with error -32600 (Invalid Request), instead of 202 and no reply at all."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024 * 1024  # past this the SDK's own handling applies; nothing is buffered


# An `id` written as anything but a string or an integer: only then is the body parsed here (a
# question of 400 KB costs no second parse).
_SUSPECT_ID = re.compile(rb'"id"\s*:\s*(?:[{\[tfn]|-?\d+[.eE])')


def _bad_id(body: bytes) -> bool:
    if not _SUSPECT_ID.search(body):
        return False
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return False  # the SDK answers a parse error itself
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return False
    given = message["id"]
    return not (isinstance(given, str) or (isinstance(given, int) and not isinstance(given, bool)))


class JsonRpcIdGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body") or size > MAX_BODY_BYTES:
                break
        if size <= MAX_BODY_BYTES and _bad_id(b"".join(m.get("body", b"") for m in messages)):
            await _invalid_request(send)
            return
        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


async def _invalid_request(send: Send) -> None:
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "Invalid Request: the id must be a string or an integer"}}
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
