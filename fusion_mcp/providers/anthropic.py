"""Anthropic's Messages API."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx

from ..errors import UnparseableResponseError
from .base import ChatRequest, Completion, Usage
from .http import api_key, error_for_status, int_or_none, json_body, post_json
from .spec import ProviderSpec

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 2048  # the Messages API requires max_tokens


class AnthropicProvider:
    def __init__(self, spec: ProviderSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.name = spec.name
        self._client = client
        base = spec.base_url.rstrip("/")
        self._url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def _headers(self, model: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        key = api_key(self.spec, model)
        if key:
            headers["x-api-key"] = key
        return headers

    @staticmethod
    def _body(model: str, request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [m.model_dump() for m in request.messages if m.role != "system"],
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
        return body

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float) -> Completion:
        headers = self._headers(model)
        started = time.perf_counter()
        response = await post_json(
            self._client, self.name, model, self._url, self._body(model, request), headers, timeout_s
        )
        if response.status_code >= 400:
            raise error_for_status(self.name, model, response)
        body = json_body(self.name, model, response)
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise UnparseableResponseError(self.name, model, "response has no content blocks")
        text = "".join(b["text"] for b in blocks
                       if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
        if not text.strip():
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        raw_usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return Completion(
            provider=self.name,
            model=model,
            text=text,
            usage=Usage(
                input_tokens=int_or_none(raw_usage.get("input_tokens")),
                output_tokens=int_or_none(raw_usage.get("output_tokens")),
            ),
            latency_s=time.perf_counter() - started,
        )
