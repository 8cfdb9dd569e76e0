"""Per-call models: an ensemble with its drafters, reviewer or synthesizer replaced for one call.

The ensemble still supplies the providers its references may name, the deadline, and each role's
settings: a drafter named again keeps the settings it has in the ensemble, and a replaced reviewer
or synthesizer keeps the temperature, output cap and reasoning effort of the one it replaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import FusionError
from .ensembles import Ensemble, ModelRole, split_model_ref

MAX_DRAFTERS = 8


class ModelChoiceError(FusionError):
    """A per-call model reference that cannot be used; the message says how to fix it."""


def resolve_ref(ensemble: Ensemble, ref: str, what: str) -> tuple[str, str]:
    """(provider, model-id) of `ref`, checked against the providers the ensemble knows."""
    try:
        provider, model_id = split_model_ref(ref.strip())
    except ValueError:
        raise ModelChoiceError(f"{what} {ref!r} must look like 'provider:model-id', e.g. "
                               "'openrouter:openai/gpt-5.5'") from None
    if provider not in ensemble.providers:
        known = ", ".join(sorted(ensemble.providers))
        raise ModelChoiceError(f"{what} {ref!r} names unknown provider {provider!r}; ensemble "
                               f"{ensemble.name!r} knows {known}")
    return provider, model_id


def _role(ensemble: Ensemble, ref: str, what: str, like: ModelRole | None) -> ModelRole:
    provider, model_id = resolve_ref(ensemble, ref, what)
    spec = ensemble.providers[provider]
    if like is None:
        return ModelRole(provider=spec, model_id=model_id)
    return dataclasses.replace(like, provider=spec, model_id=model_id, web=like.web and spec.web_plugin)


def with_roles(ensemble: Ensemble, drafters: Sequence[str] | None = None, reviewer: str | None = None,
               synthesizer: str | None = None) -> Ensemble:
    """`ensemble` with the roles given replaced (None keeps a role as it is)."""
    if drafters is None and reviewer is None and synthesizer is None:
        return ensemble
    changes: dict[str, object] = {}
    if drafters is not None:
        if not 1 <= len(drafters) <= MAX_DRAFTERS:
            raise ModelChoiceError(f"drafters takes 1 to {MAX_DRAFTERS} models, not {len(drafters)}")
        same = {d.ref: d for d in ensemble.drafters}
        roles = []
        for i, ref in enumerate(drafters):
            provider, model_id = resolve_ref(ensemble, ref, f"drafters[{i}]")
            kept = same.get(f"{provider}:{model_id}")
            roles.append(kept if kept is not None else _role(ensemble, ref, f"drafters[{i}]", None))
        changes["drafters"] = tuple(roles)
        changes["min_drafts"] = min(ensemble.min_drafts, len(roles))
    if reviewer is not None:
        changes["reviewer"] = _role(ensemble, reviewer, "reviewer", ensemble.reviewer)
    if synthesizer is not None:
        changes["synthesizer"] = _role(ensemble, synthesizer, "synthesizer", ensemble.synthesizer)
    return dataclasses.replace(ensemble, **changes)  # type: ignore[arg-type]
