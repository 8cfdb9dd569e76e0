"""Model providers: one module per wire format behind one interface (`Provider`)."""

from __future__ import annotations

import httpx

from .base import ChatRequest, Completion, Message, Provider, Usage
from .spec import BUILTIN_PROVIDERS, ProviderSpec

__all__ = [
    "BUILTIN_PROVIDERS",
    "ChatRequest",
    "Completion",
    "Message",
    "Provider",
    "ProviderSpec",
    "Usage",
    "build_provider",
]


def build_provider(spec: ProviderSpec, client: httpx.AsyncClient) -> Provider:
    """The raw provider for a spec; the engine wraps it with retries and limits."""
    if spec.kind == "openai":
        from .openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(spec, client)
    if spec.kind == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(spec, client)
    if spec.kind == "local":
        from .local import LocalProvider

        return LocalProvider(spec)
    raise ValueError(f"unknown provider kind {spec.kind!r}")
