"""Anthropic's Messages API, streamed by default (message_start … content_block_delta … message_delta)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2 as httpx

from ..errors import ProviderError, RateLimitedError, UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, TextSink, Usage
from .http_client import api_key, error_for_status, int_or_none, json_body, post_json, read_capped
from .spec import ProviderSpec
from .sse import OVERFLOW, event_cap, events, open_stream, pace
from .tool_wire import AnthropicToolBlocks, add_anthropic_tools, anthropic_messages, anthropic_tool_calls

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens; a provider's default_max_tokens wins


class AnthropicProvider:
    def __init__(self, spec: ProviderSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.name = spec.name
        self._client = client
        base = spec.base_url.rstrip("/")
        self._url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        self._streams = spec.stream

    def _headers(self, model: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        key = api_key(self.spec, model)
        if key:
            headers["x-api-key"] = key
        return headers

    def _body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or self.spec.default_max_tokens or DEFAULT_MAX_TOKENS,
            "messages": anthropic_messages(request.messages),
        }
        add_anthropic_tools(body, request)
        if stream:
            body["stream"] = True
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
        return body

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        started = time.perf_counter()
        headers = self._headers(model)
        if self._streams:
            completion = await self._stream(model, request, headers, timeout_s, sink, started)
            if completion is not None:
                return completion
            self._streams = False  # the server refused to stream: ask plainly from now on
        response = await post_json(self._client, self.name, model, self._url,
                                   self._body(model, request, stream=False), headers,
                                   max(0.01, timeout_s - (time.perf_counter() - started)))
        if response.status_code >= 400:
            raise error_for_status(self.name, model, response)
        return self._message(model, response, started, sink)

    def _message(self, model: str, response: httpx.Response, started: float, sink: TextSink | None) -> Completion:
        """A whole (unstreamed) message."""
        body = json_body(self.name, model, response)
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise UnparseableResponseError(self.name, model, "response has no content blocks")
        text = "".join(b["text"] for b in blocks
                       if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
        tool_calls = anthropic_tool_calls(blocks)
        if not text.strip() and not tool_calls:
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        if sink is not None:
            sink.begin()
            sink.write(text)
        usage = body.get("usage")
        raw_usage: dict[str, Any] = usage if isinstance(usage, dict) else {}
        stop = body.get("stop_reason") if isinstance(body.get("stop_reason"), str) else None
        return Completion(
            provider=self.name, model=model, text=text,
            usage=Usage(input_tokens=int_or_none(raw_usage.get("input_tokens")),
                        output_tokens=int_or_none(raw_usage.get("output_tokens"))),
            latency_s=time.perf_counter() - started,
            finish_reason=stop,
            truncated=stop == "max_tokens",
            tool_calls=tool_calls,
        )

    async def _stream(self, model: str, request: ChatRequest, headers: dict[str, str], timeout_s: float,
                      sink: TextSink | None, started: float) -> Completion | None:
        """The streamed call; None when the server refused to stream (the caller asks plainly)."""
        sink = sink if sink is not None else TextSink()
        sink.begin()
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop: str | None = None
        tools = AnthropicToolBlocks()
        body = self._body(model, request, stream=True)
        async with open_stream(self._client, self.name, model, self._url, body, headers, timeout_s) as response:
            if response.status_code >= 400:
                response = await read_capped(self.name, model, response)
                if response.status_code in (400, 422) and "stream" in response.text.lower():
                    return None
                raise error_for_status(self.name, model, response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                response = await read_capped(self.name, model, response)  # a server that ignores `stream`
                return self._message(model, response, started, sink)
            sink.admitted()
            async for event, data in events(response, event_cap(sink)):
                if event == OVERFLOW or sink.cut:
                    sink.cut = True
                    break  # past the reply cap: the stream closes here, the text kept so far is the reply
                payload = self._payload(model, data)
                kind = payload.get("type", event)
                if kind == "error":
                    raise self._stream_error(model, payload.get("error"))
                if kind == "message_start":
                    usage = (payload.get("message") or {}).get("usage") or {}
                    input_tokens = int_or_none(usage.get("input_tokens"))
                    output_tokens = int_or_none(usage.get("output_tokens"))
                elif kind == "content_block_start":
                    tools.start(payload)
                elif kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                        sink.write(delta["text"])
                    tools.delta(payload)
                elif kind == "message_delta":
                    usage = payload.get("usage") or {}
                    output_tokens = int_or_none(usage.get("output_tokens")) or output_tokens
                    reason = (payload.get("delta") or {}).get("stop_reason")
                    stop = reason if isinstance(reason, str) else stop
                elif kind == "message_stop":
                    break
        ended = time.perf_counter()
        tool_calls = tools.calls()
        if not sink.text.strip() and not tool_calls:
            why = "a reply in one piece longer than the reply cap" if sink.cut else "model returned an empty answer"
            raise UnparseableResponseError(self.name, model, why)
        ttft, rate = pace(started, sink.first_at, ended, output_tokens)
        return Completion(
            provider=self.name, model=model, text=sink.text,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_s=ended - started, ttft_s=ttft, output_tokens_per_s=rate,
            finish_reason=stop, truncated=stop == "max_tokens" or sink.cut, tool_calls=tool_calls,
        )

    def _payload(self, model: str, data: str) -> dict[str, Any]:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            raise UnparseableResponseError(self.name, model, f"stream event is not JSON: {data[:80]!r}") from None
        if not isinstance(payload, dict):
            raise UnparseableResponseError(self.name, model, "stream event is not a JSON object")
        return payload

    def _stream_error(self, model: str, error: Any) -> ProviderError:
        """An `error` event mid-stream (e.g. overloaded_error), typed like the HTTP status it stands for."""
        error = error if isinstance(error, dict) else {}
        kind, message = str(error.get("type", "error")), str(error.get("message", ""))
        reason = f"{kind}: {message}" if message else kind
        if kind == "rate_limit_error":
            return RateLimitedError(self.name, model, reason)
        return UpstreamError(self.name, model, f"mid-stream {reason}",
                             retryable=kind in ("overloaded_error", "api_error"))
