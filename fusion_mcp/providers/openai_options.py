"""The OpenAI-kind wire details that differ by upstream and model, kept out of the provider itself.

Which field carries the output cap (`max_tokens`, or `max_completion_tokens` that OpenAI's
reasoning models require), how a reasoning effort is sent (OpenRouter's `reasoning` object or
OpenAI's `reasoning_effort`), OpenRouter's web plugin, and what the reply says about how it ended
(`finish_reason`) and which web sources it cited (`annotations`).
"""

from __future__ import annotations

import re
from typing import Any

from .base import ChatRequest, Citation
from .spec import ProviderSpec

# OpenAI models that refuse `max_tokens` and want `max_completion_tokens`: the o-series and GPT-5.
_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:openai/)?(?:o\d|gpt-5)", re.IGNORECASE)


def token_limit_field(spec: ProviderSpec, model: str, learned: set[str]) -> str:
    """The request field for the output cap: the spec's choice, else by model id (`auto`), else
    what this model's server asked for after rejecting `max_tokens` (`learned`)."""
    if spec.max_tokens_field != "auto":
        return spec.max_tokens_field
    if model in learned or _COMPLETION_TOKENS_MODELS.match(model):
        return "max_completion_tokens"
    return "max_tokens"


def rejects_max_tokens(status: int, text: str) -> bool:
    """A server that refused `max_tokens` and named `max_completion_tokens` instead."""
    return status == 400 and "max_completion_tokens" in text and "max_tokens" in text


def add_options(body: dict[str, Any], spec: ProviderSpec, model: str, request: ChatRequest,
                learned: set[str]) -> dict[str, Any]:
    """The output cap, reasoning effort and web plugin, in this upstream's fields."""
    if request.max_tokens is not None:
        body.pop("max_tokens", None)
        body[token_limit_field(spec, model, learned)] = request.max_tokens
    if request.reasoning is not None:
        if spec.reasoning_field == "reasoning_effort":
            body["reasoning_effort"] = request.reasoning
        else:
            body["reasoning"] = {"effort": request.reasoning}
    if request.web:
        body["plugins"] = [{"id": "web"}]
    return body


def finish_of(choice: dict[str, Any]) -> tuple[str | None, bool]:
    """(finish_reason, truncated): `length` means the output cap cut the answer."""
    reason = choice.get("finish_reason") or choice.get("native_finish_reason")
    reason = reason if isinstance(reason, str) else None
    return reason, reason in ("length", "max_tokens", "max_output_tokens")


def citations_of(message: dict[str, Any]) -> list[Citation]:
    """OpenRouter's `url_citation` annotations, one per distinct URL."""
    out: dict[str, Citation] = {}
    annotations = message.get("annotations")
    for a in annotations if isinstance(annotations, list) else []:
        c = a.get("url_citation") if isinstance(a, dict) and a.get("type") == "url_citation" else None
        if isinstance(c, dict) and isinstance(c.get("url"), str) and c["url"] not in out:
            title = c.get("title")
            out[c["url"]] = Citation(url=c["url"], title=title if isinstance(title, str) else None)
    return list(out.values())
