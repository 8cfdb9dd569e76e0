"""Which ensemble a tool call runs: the named (or default) one, with the models the call chose,
ready to run, or a ToolError that says what to do. No `from __future__ import annotations`
(see service.py)."""

from collections.abc import Sequence

from mcp.server.mcpserver.exceptions import ToolError

from ..config.ensembles import Ensemble
from ..config.overrides import ModelChoiceError, with_roles
from .service import FusionService


def chosen_ensemble(service: FusionService, name: str | None, *, drafters: Sequence[str] | None = None,
                    reviewer: str | None = None, synthesizer: str | None = None,
                    roles: tuple[str, ...] | None = None) -> Ensemble:
    """The ensemble with the call's models; only the keys of `roles` (default: all) must be set."""
    if drafters is None and reviewer is None and synthesizer is None:
        return service.ensemble(name, roles)
    base = service.ensemble(name, roles=())  # loaded, keys not checked yet: the call may replace models
    try:
        ensemble = with_roles(base, drafters, reviewer, synthesizer)
    except ModelChoiceError as exc:
        raise ToolError(f"{exc}. Call list_models for model ids.") from None
    service.check_ready(ensemble, roles, chosen=True)
    return ensemble
