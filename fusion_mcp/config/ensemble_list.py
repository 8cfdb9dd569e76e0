"""The ensembles as a listing: models, readiness, deadline and an estimated cost per call.

One model of the data for `fusion-mcp ensembles` and the `list_ensembles` tool. No
`from __future__ import annotations`: it is a tool's return type (see server/service.py).
"""


from collections.abc import Callable

from pydantic import BaseModel, Field

from ..errors import NoReadyEnsembleError, UnknownEnsembleError
from .cost_model import DEFAULT_OUTPUT_LIMIT, REFERENCE_QUESTION_TOKENS
from .ensemble_registry import EnsembleRegistry
from .ensembles import Ensemble, RoleName
from .model_catalog import unlisted_warning
from .pricing import Pricing

# What the estimate is, stated in the result: the spending cap's own bound, for a reference question.
COST_ASSUMPTION = (
    f"the most one fused answer can cost for a question of about {REFERENCE_QUESTION_TOKENS} tokens and no "
    f"context: every call counted up to its output limit (max_tokens, else {DEFAULT_OUTPUT_LIMIT} tokens), "
    "exactly as max_cost_usd counts it; a longer question or context costs more"
)
# How an ensemble's estimate is made (fusion/estimate.py's reference_estimate, handed in by the caller:
# the listing sits below the engine that builds the prompts it counts).
CostEstimate = Callable[[Ensemble, Pricing], float | None]


class ModelInfo(BaseModel):
    role: RoleName
    model: str
    priced: bool = Field(description="Whether a price is known (the local model is free).")


class EnsembleInfo(BaseModel):
    name: str
    description: str
    default: bool
    ready: bool = Field(description="True when every API key it needs is set and its local models are installed.")
    missing_keys: list[str] = Field(default_factory=list, description="Environment variables to set.")
    missing_local: list[str] = Field(
        default_factory=list, description="What its local models lack here, with the command that installs it."
    )
    deadline_s: float
    models: list[ModelInfo]
    estimated_cost_usd: float | None = Field(
        default=None, description="Per call, see cost_assumption; null when a model's price is unknown."
    )
    warnings: list[str] = Field(default_factory=list, description="Model ids missing from their provider's listing.")


class EnsembleList(BaseModel):
    ensembles: list[EnsembleInfo]
    default: str | None = None
    default_reason: str
    cost_assumption: str = COST_ASSUMPTION
    broken_files: dict[str, str] = Field(default_factory=dict, description="Ensemble files that failed to load.")


def model_warnings(ensemble: Ensemble, pricing: Pricing) -> list[str]:
    """A warning, with the closest ids, for each model not in its provider's cached listing."""
    folder = pricing.models_cache
    if folder is None:
        return []
    refs = dict.fromkeys((r.ref, r.provider.name, r.model_id) for _, r in ensemble.roles)
    return [w for ref, provider, model_id in refs if (w := unlisted_warning(folder, ref, provider, model_id))]


def ensemble_list_of(registry: EnsembleRegistry, pricing: Pricing, estimate: CostEstimate) -> EnsembleList:
    """Every ensemble, priced with `pricing` (the listing's and the engine's prices agree when both are
    built from the same settings)."""
    try:
        default, why = registry.default()
    except UnknownEnsembleError as exc:
        default, why = None, str(exc) if exc.name != "(default)" else "no ensemble found"
    except NoReadyEnsembleError as exc:
        default, why = None, str(exc)
    infos = []
    for name in registry.names():
        e = registry.ensembles[name]
        infos.append(EnsembleInfo(
            name=name,
            description=e.description,
            default=name == default,
            ready=e.ready,
            missing_keys=e.missing_keys(),
            missing_local=e.missing_local(),
            deadline_s=e.deadline_s,
            models=[ModelInfo(role=role, model=r.ref,
                              priced=r.provider.kind == "local" or pricing.price_for(r.ref) is not None)
                    for role, r in e.roles],
            estimated_cost_usd=estimate(e, pricing),
            warnings=model_warnings(e, pricing),
        ))
    return EnsembleList(
        ensembles=infos, default=default, default_reason=why,
        broken_files={name: str(exc) for name, exc in registry.errors.items()},
    )
