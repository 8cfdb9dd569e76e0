"""The few ASGI moves the model API makes: read a JSON body, answer JSON, stream server-sent events,
and notice a client that hangs up (uvicorn's `receive` answers `http.disconnect` once it has)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Send

from .errors import ApiError

MAX_BODY_BYTES = 8 * 1024 * 1024  # a 400,000-character context in any script, with room for the JSON


async def read_json(receive: Receive) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client hung up before sending the whole request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB: send less context",
                           "request_too_large", code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                       code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return body


def _raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status, "headers": _raw_headers(
        {"content-type": "application/json", "content-length": str(len(data)), **(headers or {})})})
    await send({"type": "http.response.body", "body": data})


class EventStream:
    """A `text/event-stream` response; each `event` or `comment` goes out at once."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def open(self, headers: dict[str, str]) -> None:
        await self._send({"type": "http.response.start", "status": 200, "headers": _raw_headers({
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
            "x-accel-buffering": "no", **headers})})

    async def event(self, data: dict[str, Any] | str, name: str | None = None) -> None:
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        head = f"event: {name}\n" if name else ""
        await self._write(f"{head}data: {payload}\n\n")

    async def comment(self, text: str) -> None:
        """An SSE comment: every client ignores it, and a proxy sees the connection is alive."""
        await self._write(f": {text.replace(chr(10), ' ')}\n\n")

    async def _write(self, text: str) -> None:
        await self._send({"type": "http.response.body", "body": text.encode(), "more_body": True})

    async def close(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def watch_disconnect(receive: Receive, on_gone: Callable[[], None]) -> None:
    """Call `on_gone` once the client hangs up. Run beside the response, after the body is read, and
    cancelled when the response is complete."""
    while (await receive())["type"] != "http.disconnect":
        pass
    on_gone()
