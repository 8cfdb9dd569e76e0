"""Completions in a store's call cache (store/call_cache.py): the key of a call, and the stored JSON.

The key (`call_key`) is a digest of a format version, the provider's name, kind and address, the
model, the messages, the parameters and the sample index; an API key is never part of it, and a
stored completion holds only text, usage, cost and timing.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import ValidationError

from ..providers.base import ChatRequest, Completion
from ..providers.spec import ProviderSpec
from ..store.call_cache import CallCache

# Bump when what a stored completion means changes (its parsing, its fields): old rows stop matching.
KEY_VERSION = 2


def call_key(spec: ProviderSpec, model_id: str, request: ChatRequest, sample: int) -> str:
    """A digest of what determines a model call. It holds no key: only the provider's address."""
    payload = {
        "version": KEY_VERSION,
        "provider": [spec.name, spec.kind, spec.base_url],
        "model": model_id,
        "request": request.model_dump(),
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def cached_completion(cache: CallCache, key: str) -> Completion | None:
    """The completion stored under `key`; None when absent or written by an incompatible version."""
    raw = await cache.get(key)
    if raw is None:
        return None
    try:
        return Completion.model_validate_json(raw)
    except ValidationError:
        cache.unreadable()
        return None


async def store_completion(cache: CallCache, key: str, completion: Completion) -> None:
    data = completion.model_copy(update={"cached": False}).model_dump_json()
    await cache.put(key, data, provider=completion.provider, model=completion.model)
