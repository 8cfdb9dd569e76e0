"""Model providers: one module per wire format behind one interface (`Provider`).

base (the interface and its types) · spec (how a provider is declared) · kinds (kinds and the
pool of wrapped providers) · resilience (retries, deadlines, limits) · limiter (the adaptive limit) ·
http_client (what the HTTP ones share) · openai_compat · anthropic · local (the embedded model) ·
function (a Python function). A provider's shared concurrency count lives in store/limits.py.
"""

from __future__ import annotations

from .base import ChatRequest, Completion, Message, Provider, Usage
from .function import FunctionProvider
from .kinds import ProviderPool, build_provider, known_kinds, register_kind
from .spec import BUILTIN_PROVIDERS, ProviderSpec

__all__ = [
    "BUILTIN_PROVIDERS",
    "ChatRequest",
    "Completion",
    "FunctionProvider",
    "Message",
    "Provider",
    "ProviderPool",
    "ProviderSpec",
    "Usage",
    "build_provider",
    "known_kinds",
    "register_kind",
]
