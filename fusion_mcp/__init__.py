"""fusion-mcp: ask several LLMs at once, have one review the drafts, have one fuse the answer.

The names below load on first use (PEP 562), so that `fusion-mcp --help` and `fusion-mcp ensembles`
do not pay for the engine and its HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {
    "FusionEngine": ".fusion.engine",
    "Ensemble": ".config.ensembles",
    "EnsembleRegistry": ".config.ensemble_registry",
    "ConfigError": ".errors",
    "FusionError": ".errors",
    "NoDraftsError": ".errors",
    "ProviderError": ".errors",
    "UnknownEnsembleError": ".errors",
    "ProgressEvent": ".fusion.events",
    "Draft": ".fusion.result",
    "FusionResult": ".fusion.result",
    "Scores": ".fusion.result",
    "Stage": ".fusion.result",
    "Totals": ".fusion.result",
}

__all__ = [
    "ConfigError", "Draft", "Ensemble", "EnsembleRegistry", "FusionEngine", "FusionError", "FusionResult",
    "NoDraftsError", "ProgressEvent", "ProviderError", "Scores", "Stage", "Totals", "UnknownEnsembleError",
]

if TYPE_CHECKING:
    from .config.ensemble_registry import EnsembleRegistry
    from .config.ensembles import Ensemble
    from .errors import ConfigError, FusionError, NoDraftsError, ProviderError, UnknownEnsembleError
    from .fusion.engine import FusionEngine
    from .fusion.events import ProgressEvent
    from .fusion.result import Draft, FusionResult, Scores, Stage, Totals


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fusion_mcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
