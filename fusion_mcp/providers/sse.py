"""Server-sent events over httpx: open a streamed POST with typed errors, and read its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx

from .http_client import error_for_transport


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, provider: str, model: str, url: str, body: dict[str, Any],
                      headers: dict[str, str], timeout_s: float) -> AsyncIterator[httpx.Response]:
    """A streamed POST; a transport failure (at the start or mid-stream) becomes a typed error.
    The caller reads the status and, when it is an error, the body (`await response.aread()`)."""
    try:
        async with client.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as response:
            yield response
    except httpx.TransportError as exc:
        raise error_for_transport(provider, model, url, exc) from None


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs; comment lines (OpenRouter's keep-alives) are skipped."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
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


def pace(started: float, first_at: float | None, ended: float,
         output_tokens: int | None) -> tuple[float | None, float | None]:
    """(time to first token, output tokens a second after it) of a streamed call."""
    if first_at is None:
        return None, None
    ttft = max(0.0, first_at - started)
    span = ended - first_at
    rate = (output_tokens - 1) / span if output_tokens and output_tokens > 1 and span > 0.05 else None
    return round(ttft, 3), (round(rate, 1) if rate is not None else None)
