"""Provider kinds, and the pool that builds and wraps one provider per declared spec.

A kind names a factory: `openai`, `anthropic` and `local` are built in; `register_kind` adds more
(a plugin, a test). The pool hands the run one `ResilientProvider` per spec, so every run shares a
provider's concurrency limit, and lets a caller hand in ready providers by name (`FusionEngine(providers=...)`),
which is how tests and embedders plug in a provider without an HTTP server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio

from ..errors import ConfigError
from ..store.limits import LimitFactory, local_limit
from .base import Provider
from .resilience import ResilientProvider

if TYPE_CHECKING:  # spec.py validates kinds against this module; httpx loads with the engine, not here
    import httpx2 as httpx

    from .spec import ProviderSpec

ProviderFactory = Callable[["ProviderSpec", "httpx.AsyncClient"], Provider]


def _openai(spec: ProviderSpec, client: httpx.AsyncClient) -> Provider:
    from .openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(spec, client)


def _anthropic(spec: ProviderSpec, client: httpx.AsyncClient) -> Provider:
    from .anthropic import AnthropicProvider

    return AnthropicProvider(spec, client)


def _local(spec: ProviderSpec, _client: httpx.AsyncClient) -> Provider:
    from .local import LocalProvider

    return LocalProvider(spec)


def _handed_in(spec: ProviderSpec, _client: httpx.AsyncClient) -> Provider:
    raise ConfigError(
        f"provider {spec.name!r} is of kind 'function': pass it ready-made, "
        f"as FusionEngine(providers={{{spec.name!r}: ...}})"
    )


_KINDS: dict[str, ProviderFactory] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "local": _local,
    "function": _handed_in,
}


HTTP_KINDS = {"openai", "anthropic"}  # the kinds that share the engine's HTTP client


def register_kind(kind: str, factory: ProviderFactory) -> None:
    """Make `kind = "<kind>"` usable in `[providers.NAME]` tables."""
    _KINDS[kind] = factory


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def build_provider(spec: ProviderSpec, client: httpx.AsyncClient) -> Provider:
    """The raw provider for a spec; the pool wraps it with retries and limits."""
    try:
        factory = _KINDS[spec.kind]
    except KeyError:
        raise ConfigError(f"unknown provider kind {spec.kind!r}; known: {', '.join(known_kinds())}") from None
    return factory(spec, client)


class ProviderPool:
    """One wrapped provider per spec for the life of an engine; ready-made ones win by name."""

    def __init__(self, client: httpx.AsyncClient, ready: Mapping[str, Provider] | None = None,
                 limits: LimitFactory = local_limit, *, pool_size: int | None = None) -> None:
        self._client = client
        self._limits = limits
        self._ready = dict(ready or {})
        self._wrapped: dict[ProviderSpec, Provider] = {}
        # Calls over HTTP wait here, not inside the client's pool (whose queue costs CPU per waiter).
        self._pool_slots = anyio.CapacityLimiter(pool_size) if pool_size else None

    def get(self, spec: ProviderSpec) -> Provider:
        if spec not in self._wrapped:
            inner = self._ready.get(spec.name) or build_provider(spec, self._client)
            self._wrapped[spec] = ResilientProvider(
                inner,
                max_retries=spec.max_retries,
                max_concurrency=spec.max_concurrency,
                timeout_s=spec.timeout_s,
                ceiling=self._limits(spec.name, spec.max_concurrency),
                pool_slots=self._pool_slots if spec.kind in HTTP_KINDS and spec.name not in self._ready else None,
            )
        return self._wrapped[spec]
