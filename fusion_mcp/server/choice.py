"""Which ensemble a tool call (or a model API request) runs: the named (or default) one, with the
models the call chose, ready to run, or a ToolError that says what to do. No
`from __future__ import annotations` (see service.py)."""

from collections.abc import Sequence

from mcp.server.mcpserver.exceptions import ToolError

from ..config.ensembles import Ensemble
from ..config.overrides import ModelChoiceError, with_roles
from .service import FusionService

FUSION_MODEL_IDS = ("fusion", "fusion/")  # what the model API serves (docs/model-api.md)


def is_fusion_model(model_id: str) -> bool:
    """A model id the model API serves, here or on another fusion-mcp server."""
    bare = model_id.strip().lower()
    return bare == FUSION_MODEL_IDS[0] or bare.startswith(FUSION_MODEL_IDS[1])


def recursion_problem(ensemble: Ensemble) -> str | None:
    """Why the ensemble would call a fusion model from inside a fusion run (each level running and
    paying for a whole panel, possibly without end), or None."""
    looping = [f"{name} {role.ref!r}" for name, role in ensemble.roles if is_fusion_model(role.model_id)]
    if not looping:
        return None
    return (f"{', '.join(looping)} is a fusion model: a fusion run cannot use another fusion run as one of its "
            "models; name the underlying models instead")


def chosen_ensemble(service: FusionService, name: str | None, *, drafters: Sequence[str] | None = None,
                    reviewer: str | None = None, synthesizer: str | None = None,
                    roles: tuple[str, ...] | None = None) -> Ensemble:
    """The ensemble with the call's models; only the keys of `roles` (default: all) must be set."""
    if drafters is None and reviewer is None and synthesizer is None:
        return _no_recursion(service.ensemble(name, roles))
    base = service.ensemble(name, roles=())  # loaded, keys not checked yet: the call may replace models
    try:
        ensemble = with_roles(base, drafters, reviewer, synthesizer)
    except ModelChoiceError as exc:
        raise ToolError(f"{exc}. Call list_models for model ids.") from None
    service.check_ready(ensemble, roles, chosen=True)
    return _no_recursion(ensemble)


def _no_recursion(ensemble: Ensemble) -> Ensemble:
    problem = recursion_problem(ensemble)
    if problem:
        raise ToolError(problem)
    return ensemble
