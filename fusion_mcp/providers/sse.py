"""Server-sent events over httpx: open a streamed POST with typed errors, and read its events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx

from .base import TextSink
from .http_client import error_for_transport


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, provider: str, model: str, url: str, body: dict[str, Any],
                      headers: dict[str, str], timeout_s: float) -> AsyncIterator[httpx.Response]:
    """A streamed POST; a transport failure (at the start or mid-stream) becomes a typed error.
    The caller reads the status and, when it is an error, the body (`http_client.read_capped`)."""
    try:
        async with client.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as response:
            yield response
    except httpx.TransportError as exc:
        raise error_for_transport(provider, model, url, exc) from None


OVERFLOW = "overflow"  # the event `events` yields, last, when a line ran past its cap


async def _lines(response: httpx.Response, max_chars: int | None) -> AsyncIterator[str | None]:
    """The body's lines; None, then the end, when one runs past `max_chars` (a reply of one huge
    event is never held whole)."""
    parts: list[str] = []
    size = 0
    async for chunk in response.aiter_text():
        if "\n" not in chunk and "\r" not in chunk:
            parts.append(chunk)
            size += len(chunk)
        else:
            text = "".join(parts) + chunk
            held = text.endswith("\r")  # maybe the first half of a \r\n split across two chunks
            lines = _NEWLINE.split(text[:-1] if held else text)
            tail = lines.pop() + ("\r" if held else "")
            for line in lines:
                yield line
            parts, size = [tail], len(tail)
        if max_chars is not None and size > max_chars:
            yield None
            return
    rest = "".join(parts).removesuffix("\r")
    if rest:
        yield rest


_NEWLINE = re.compile(r"\r\n|\r|\n")


async def events(response: httpx.Response, max_chars: int | None = None) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs; comment lines (OpenRouter's keep-alives) are skipped. A line longer than
    `max_chars` ends the events with (OVERFLOW, "")."""
    event, data = "message", list[str]()
    async for line in _lines(response, max_chars):
        if line is None:
            yield OVERFLOW, ""
            return
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


def event_cap(sink: TextSink) -> int | None:
    """How long one line of a stream may be: room for the sink's cap written as JSON escapes."""
    return None if sink.limit is None else 8 * sink.limit + 65_536


def pace(started: float, first_at: float | None, ended: float,
         output_tokens: int | None) -> tuple[float | None, float | None]:
    """(time to first token, output tokens a second after it) of a streamed call."""
    if first_at is None:
        return None, None
    ttft = max(0.0, first_at - started)
    span = ended - first_at
    rate = (output_tokens - 1) / span if output_tokens and output_tokens > 1 and span > 0.05 else None
    return round(ttft, 3), (round(rate, 1) if rate is not None else None)
