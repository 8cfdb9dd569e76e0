"""The fusion model ids: `fusion/<ensemble>` for every ensemble and `fusion` for the default, and the
listing both SDKs read from `GET /v1/models`. (A fusion run that would use a fusion model as one of its
own is refused where every run's ensemble is chosen: server/choice.py.)"""

from __future__ import annotations

from typing import Any

from ...config.ensemble_registry import EnsembleRegistry
from ...config.ensembles import Ensemble
from ...errors import FusionError
from .errors import ApiError

DEFAULT_ID = "fusion"
PREFIX = "fusion/"
CREATED = 1767225600  # a fixed `created` (2026-01-01): an ensemble file has no release date
CREATED_AT = "2026-01-01T00:00:00Z"


def model_ids(registry: EnsembleRegistry) -> list[str]:
    return [DEFAULT_ID] + [PREFIX + name for name in registry.names()]


def ensemble_name(model: str, registry: EnsembleRegistry) -> str | None:
    """The ensemble a model id names (None: the default), or a 404 that lists what is served."""
    if model == DEFAULT_ID:
        return None
    if model.startswith(PREFIX):
        name = model[len(PREFIX):]
        if name in registry.ensembles or name in registry.errors:
            return name
    served = ", ".join(model_ids(registry))
    raise ApiError(404, f"model {model[:80]!r} does not exist on this server: it serves {served} "
                        "(GET /v1/models lists them with their readiness)",
                   "not_found_error", param="model", code="model_not_found")


def _entry(model_id: str, ensemble: Ensemble, default_of: str | None = None) -> dict[str, Any]:
    """One model, in the fields OpenAI's and Anthropic's listings both carry, plus `fusion`."""
    missing = ensemble.missing_keys() + ensemble.missing_local()
    info: dict[str, Any] = {
        "ensemble": ensemble.name, "ready": not missing, "missing": missing,
        "description": ensemble.description, "deadline_s": ensemble.deadline_s,
        "drafters": [d.ref for d in ensemble.drafters],
        "reviewer": ensemble.reviewer.ref if ensemble.reviewer else None,
        "synthesizer": ensemble.synthesizer.ref if ensemble.synthesizer else None,
    }
    if default_of:
        info["default_reason"] = default_of
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "fusion-mcp",
            "type": "model", "display_name": f"Fusion ({ensemble.name})", "created_at": CREATED_AT,
            "fusion": info}


def listing(registry: EnsembleRegistry) -> dict[str, Any]:
    """`fusion` (when a default can be chosen) and `fusion/<name>` for each ensemble that loaded."""
    data = []
    try:
        name, why = registry.default()
        data.append(_entry(DEFAULT_ID, registry.get(name), why))
    except FusionError:
        pass  # no default can run here: `fusion` is left out, every named ensemble still shows its readiness
    data += [_entry(PREFIX + name, registry.ensembles[name]) for name in registry.names()]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def one_model(model: str, registry: EnsembleRegistry) -> dict[str, Any]:
    """`GET /v1/models/{id}`."""
    for entry in listing(registry)["data"]:
        if entry["id"] == model:
            return entry
    ensemble_name(model, registry)  # 404 with the list, for an id that is not served
    raise ApiError(404, f"model {model[:80]!r} cannot be loaded: {registry.errors.get(model[len(PREFIX):], '')}",
                   "not_found_error", param="model", code="model_not_found")
