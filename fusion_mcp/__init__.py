"""fusion-mcp: ask several LLMs at once, have one review the drafts, have one fuse the answer."""

from .fusion.engine import FusionEngine
from .config.ensembles import Ensemble, EnsembleRegistry
from .errors import (
    ConfigError,
    FusionError,
    NoDraftsError,
    ProviderError,
    UnknownEnsembleError,
)
from .fusion.events import ProgressEvent
from .fusion.result import Draft, FusionResult, Scores, Stage, Totals

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Draft",
    "Ensemble",
    "EnsembleRegistry",
    "FusionEngine",
    "FusionError",
    "FusionResult",
    "NoDraftsError",
    "ProgressEvent",
    "ProviderError",
    "Scores",
    "Stage",
    "Totals",
    "UnknownEnsembleError",
]
