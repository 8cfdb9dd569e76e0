"""OpenAI-compatible chat completions: OpenRouter, OpenAI, Ollama, llama.cpp and private endpoints.

Streams by default (`stream: true`, usage in the last chunk), so a caller sees the text as it is
written and keeps what came before a deadline; a server that refuses to stream is asked plainly from
then on. Each call records its time to first token and output rate.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2 as httpx

from ..errors import UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, TextSink, Usage
from .http_client import api_key, error_for_status, int_or_none, json_body, post_json, read_capped
from .openai_options import add_options, citations_of, finish_of, rejects_max_tokens, token_limit_field
from .spec import ProviderSpec
from .sse import OVERFLOW, event_cap, events, open_stream, pace
from .tool_wire import OpenAIToolDeltas, add_openai_tools, openai_messages, openai_tool_calls


class _Refused(Exception):
    """The server refused a feature of the request (named); ask again without it."""

    def __init__(self, feature: str) -> None:
        self.feature = feature


def _upstream_cost(raw_usage: dict[str, Any]) -> float | None:
    cost = raw_usage.get("cost")
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None


class OpenAICompatProvider:
    def __init__(self, spec: ProviderSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.name = spec.name
        self._client = client
        self._url = spec.base_url.rstrip("/") + "/chat/completions"
        # A model gets OpenAI's `json_schema` response format until its server rejects it, then
        # `{"type": "json_object", "schema": ...}`, the only shape llama.cpp's server (0.3) takes.
        # Per model: on OpenRouter one model's refusal says nothing about the others.
        self._json_object_models: set[str] = set()
        # Models whose server refused `max_tokens` and asked for `max_completion_tokens`.
        self._completion_tokens_models: set[str] = set()
        self._streams = spec.stream  # until the server refuses a stream

    def _headers(self, model: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = api_key(self.spec, model)
        if key:
            headers["authorization"] = f"Bearer {key}"
        if self.spec.usage_accounting:
            # OpenRouter asks apps to identify themselves; harmless elsewhere.
            headers["x-title"] = "fusion-mcp"
        return headers

    def _body(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": openai_messages(request),
            "stream": stream,
        }
        add_openai_tools(body, request)
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None and self.spec.structured_output:
            if model in self._json_object_models:
                body["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": request.json_schema},
                }
        if self.spec.usage_accounting:
            body["usage"] = {"include": True}
        return add_options(body, self.spec, model, request, self._completion_tokens_models)

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        started = time.perf_counter()
        headers = self._headers(model)
        for _ in range(4):  # at most: refused json_schema, max_tokens, stream, then the plain request
            left = max(0.01, timeout_s - (time.perf_counter() - started))
            try:
                if self._streams:
                    return await self._stream(model, request, headers, left, sink, started)
                return await self._plain(model, request, headers, left, sink, started)
            except _Refused as refused:
                if refused.feature == "stream":
                    self._streams = False
                elif refused.feature == "max_tokens":
                    self._completion_tokens_models.add(model)
                else:
                    self._json_object_models.add(model)
        raise UpstreamError(self.name, model, "the server refused every form of the request")

    def _refusal(self, model: str, request: ChatRequest, status: int, text: str, *, streaming: bool) -> _Refused | None:
        """A server that refused the `json_schema` response format, `max_tokens` or streaming (it names
        it in its error)."""
        if status not in (400, 422, 500):
            return None
        if (request.json_schema is not None and self.spec.structured_output and model not in self._json_object_models
                and "json_schema" in text and "response_format" in text):
            return _Refused("json_schema")
        if (rejects_max_tokens(status, text) and request.max_tokens is not None and self.spec.max_tokens_field == "auto"
                and token_limit_field(self.spec, model, self._completion_tokens_models) == "max_tokens"):
            return _Refused("max_tokens")  # an OpenAI reasoning model under an id `auto` did not know
        if streaming and "stream" in text.lower():
            return _Refused("stream")
        return None

    async def _plain(self, model: str, request: ChatRequest, headers: dict[str, str], timeout_s: float,
                     sink: TextSink | None, started: float) -> Completion:
        response = await post_json(self._client, self.name, model, self._url,
                                   self._body(model, request, stream=False), headers, timeout_s)
        if response.status_code >= 400:
            refused = self._refusal(model, request, response.status_code, response.text, streaming=False)
            if refused:
                raise refused
            raise error_for_status(self.name, model, response)
        completion = self._parse(model, json_body(self.name, model, response), time.perf_counter() - started)
        if sink is not None:
            sink.begin()
            sink.write(completion.text)
        return completion

    async def _stream(self, model: str, request: ChatRequest, headers: dict[str, str], timeout_s: float,
                      sink: TextSink | None, started: float) -> Completion:
        sink = sink if sink is not None else TextSink()
        sink.begin()
        usage: dict[str, Any] = {}
        finish: dict[str, Any] = {}  # the last finish_reason seen
        annotations: list[Any] = []  # OpenRouter's web citations arrive in the deltas
        tool_deltas = OpenAIToolDeltas()
        body = self._body(model, request, stream=True)
        async with open_stream(self._client, self.name, model, self._url, body, headers, timeout_s) as response:
            if response.status_code >= 400:
                response = await read_capped(self.name, model, response)
                refused = self._refusal(model, request, response.status_code, response.text, streaming=True)
                if refused:
                    raise refused
                raise error_for_status(self.name, model, response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                # A server that ignores `stream` and answers with one JSON body.
                response = await read_capped(self.name, model, response)
                completion = self._parse(model, json_body(self.name, model, response), time.perf_counter() - started)
                sink.write(completion.text)
                return completion
            sink.admitted()
            async for _event, data in events(response, event_cap(sink)):
                if _event == OVERFLOW or sink.cut:
                    sink.cut = True
                    break  # past the reply cap: the stream closes here, the text kept so far is the reply
                if data.strip() == "[DONE]":
                    break
                chunk = self._chunk(model, data)
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(content, str):
                        sink.write(content)
                    if isinstance(delta, dict) and isinstance(delta.get("annotations"), list):
                        annotations += delta["annotations"]
                    if isinstance(delta, dict):
                        tool_deltas.add(delta)
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        finish = choice
        ended = time.perf_counter()
        tool_calls = tool_deltas.calls()
        if not sink.text.strip() and not tool_calls:
            why = "a reply in one piece longer than the reply cap" if sink.cut else "model returned an empty answer"
            raise UnparseableResponseError(self.name, model, why)
        output_tokens = int_or_none(usage.get("completion_tokens"))
        ttft, rate = pace(started, sink.first_at, ended, output_tokens)
        cost = _upstream_cost(usage)
        finish_reason, truncated = finish_of(finish)
        return Completion(
            provider=self.name, model=model, text=sink.text,
            usage=Usage(input_tokens=int_or_none(usage.get("prompt_tokens")), output_tokens=output_tokens),
            cost_usd=cost, cost_source="upstream" if cost is not None else "unknown",
            latency_s=ended - started, ttft_s=ttft, output_tokens_per_s=rate,
            finish_reason=finish_reason, truncated=truncated or sink.cut,
            citations=citations_of({"annotations": annotations}), tool_calls=tool_calls,
        )

    def _chunk(self, model: str, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise UnparseableResponseError(self.name, model, f"stream chunk is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise UnparseableResponseError(self.name, model, "stream chunk is not a JSON object")
        if isinstance(chunk.get("error"), dict):  # OpenRouter reports mid-stream errors as a chunk
            message = chunk["error"].get("message", "unknown error")
            raise UpstreamError(self.name, model, f"upstream error mid-stream: {message}")
        return chunk

    def _parse(self, model: str, body: dict[str, Any], latency_s: float) -> Completion:
        choices = body.get("choices")
        if not choices:
            if isinstance(body.get("error"), dict):  # OpenRouter can report errors with a 200
                message = body["error"].get("message", "unknown error")
                raise UpstreamError(self.name, model, f"upstream error: {message}")
            raise UnparseableResponseError(self.name, model, "response has no choices")
        first = choices[0] if isinstance(choices, list) else None
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        tool_calls = openai_tool_calls(message) if isinstance(message, dict) else []
        if content is None and tool_calls:
            content = ""
        if not isinstance(content, str):
            raise UnparseableResponseError(self.name, model, "response choice has no text content")
        if not content.strip() and not tool_calls:
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        usage = body.get("usage")
        raw_usage: dict[str, Any] = usage if isinstance(usage, dict) else {}
        finish_reason, truncated = finish_of(first if isinstance(first, dict) else {})
        cost = _upstream_cost(raw_usage)
        return Completion(
            provider=self.name,
            model=model,
            text=content,
            usage=Usage(
                input_tokens=int_or_none(raw_usage.get("prompt_tokens")),
                output_tokens=int_or_none(raw_usage.get("completion_tokens")),
            ),
            cost_usd=cost,
            cost_source="upstream" if cost is not None else "unknown",
            latency_s=latency_s,
            finish_reason=finish_reason,
            truncated=truncated,
            citations=citations_of(message if isinstance(message, dict) else {}),
            tool_calls=tool_calls,
        )



