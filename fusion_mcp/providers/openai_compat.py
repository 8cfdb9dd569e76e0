"""OpenAI-compatible chat completions: OpenRouter, OpenAI, Ollama, llama.cpp and private endpoints."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx

from ..errors import UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, Usage
from .http import api_key, error_for_status, int_or_none, json_body, post_json
from .spec import ProviderSpec


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

    def _headers(self, model: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = api_key(self.spec, model)
        if key:
            headers["authorization"] = f"Bearer {key}"
        if self.spec.usage_accounting:
            # OpenRouter asks apps to identify themselves; harmless elsewhere.
            headers["x-title"] = "fusion-mcp"
        return headers

    def _body(self, model: str, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.model_dump() for m in request.messages],
            "stream": False,
        }
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
        return body

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float) -> Completion:
        headers = self._headers(model)
        started = time.perf_counter()
        response = await post_json(
            self._client, self.name, model, self._url, self._body(model, request), headers, timeout_s
        )
        if response.status_code >= 400 and self._rejects_json_schema(model, request, response):
            self._json_object_models.add(model)
            return await self.complete(model, request, timeout_s=max(0.01, timeout_s - (time.perf_counter() - started)))
        if response.status_code >= 400:
            raise error_for_status(self.name, model, response)
        body = json_body(self.name, model, response)
        return self._parse(model, body, time.perf_counter() - started)

    def _rejects_json_schema(self, model: str, request: ChatRequest, response: httpx.Response) -> bool:
        """A server that refused the `json_schema` response format (it names it in its error)."""
        return (
            request.json_schema is not None
            and self.spec.structured_output
            and model not in self._json_object_models
            and response.status_code in (400, 422, 500)
            and "json_schema" in response.text
            and "response_format" in response.text
        )

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
        if not isinstance(content, str):
            raise UnparseableResponseError(self.name, model, "response choice has no text content")
        if not content.strip():
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        raw_usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        usage = Usage(
            input_tokens=int_or_none(raw_usage.get("prompt_tokens")),
            output_tokens=int_or_none(raw_usage.get("completion_tokens")),
        )
        upstream_cost = raw_usage.get("cost")
        cost = float(upstream_cost) if isinstance(upstream_cost, (int, float)) and not isinstance(upstream_cost, bool) else None
        return Completion(
            provider=self.name,
            model=model,
            text=content,
            usage=usage,
            cost_usd=cost,
            cost_source="upstream" if cost is not None else "unknown",
            latency_s=latency_s,
        )
