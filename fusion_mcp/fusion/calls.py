"""One model call as a run sees it: the cache first, else the provider, with its cost filled in.

This is the one place a completion enters a run, so its text is redacted here, before anything
stores, cuts, logs or returns it.
"""

from __future__ import annotations

import logging

from ..config.ensembles import ModelRole
from ..config.pricing import with_cost
from ..errors import ProviderError, UpstreamError
from ..providers import ChatRequest, Completion, ProviderPool
from ..redaction import redact
from .call_cache import CallCache, call_key

log = logging.getLogger("fusion_mcp")


class ModelCaller:
    """Calls a role's model through the shared provider pool and the optional call cache."""

    def __init__(self, providers: ProviderPool, cache: CallCache | None = None) -> None:
        self.providers = providers
        self.cache = cache

    async def __call__(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int = 0) -> Completion:
        key = call_key(role.provider, role.model_id, request, sample) if self.cache is not None else ""
        if self.cache is not None:
            try:
                hit = await self.cache.get(key)
            except Exception:  # a broken cache costs a call, never the answer
                log.exception("call cache read failed")
                hit = None
            if hit is not None:  # redacted again: an entry may predate a key
                return hit.model_copy(update={"cached": True, "text": redact(hit.text)})
        try:
            completion = await self.providers.get(role.provider).complete(role.model_id, request, timeout_s=timeout_s)
        except ProviderError:
            raise
        except Exception as exc:  # a provider bug must cost one call, not the whole run
            log.error("provider %s raised unexpectedly: %s", role.provider.name, redact(repr(exc)))
            raise UpstreamError(role.provider.name, role.model_id, f"unexpected {type(exc).__name__}: {exc}") from None
        completion = with_cost(completion.model_copy(update={"text": redact(completion.text)}))
        if self.cache is not None:
            try:
                await self.cache.put(key, completion)
            except Exception:
                log.exception("call cache write failed")
        return completion
