"""The ensembles as a listing: models, readiness, deadline and an estimated cost per call.

One model of the data for `fusion-mcp ensembles` and the `list_ensembles` tool. No
`from __future__ import annotations`: it is a tool's return type (see server/service.py).
"""


from pydantic import BaseModel, Field

from ..errors import NoReadyEnsembleError, UnknownEnsembleError
from .ensemble_registry import EnsembleRegistry
from .ensembles import Ensemble, ModelRole, RoleName
from .model_catalog import unlisted_warning
from .pricing import price_for

# The token budget behind `list_ensembles`' cost estimate. Stated in the result, because real
# cost scales with the question, the context and the answers' length.
ASSUMED_PROMPT_TOKENS = 500
ASSUMED_DRAFT_TOKENS = 600
ASSUMED_REVIEW_TOKENS_PER_DRAFT = 100
ASSUMED_ANSWER_TOKENS = 600
COST_ASSUMPTION = (
    f"estimate per call, assuming a {ASSUMED_PROMPT_TOKENS}-token prompt, {ASSUMED_DRAFT_TOKENS}-token drafts, "
    f"a review that reads every draft and writes {ASSUMED_REVIEW_TOKENS_PER_DRAFT} tokens per draft, and a "
    f"synthesis that reads every draft and writes {ASSUMED_ANSWER_TOKENS} tokens (output capped at a role's "
    "max_tokens); long questions, context or answers cost more"
)


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


def call_cost(role: ModelRole, input_tokens: int, output_tokens: int) -> float | None:
    if role.provider.kind == "local":
        return 0.0
    price = price_for(role.ref)
    if price is None:
        return None
    if role.max_tokens is not None:
        output_tokens = min(output_tokens, role.max_tokens)
    return price.cost(input_tokens, output_tokens)


def estimate_cost(ensemble: Ensemble) -> float | None:
    """The cost of one fused answer under the stated token budget; None if any price is unknown."""
    n = len(ensemble.drafters)
    read_all = ASSUMED_PROMPT_TOKENS + n * ASSUMED_DRAFT_TOKENS
    costs = [call_cost(d, ASSUMED_PROMPT_TOKENS, ASSUMED_DRAFT_TOKENS) for d in ensemble.drafters]
    if ensemble.reviewer and n > 1:
        costs.append(call_cost(ensemble.reviewer, read_all, n * ASSUMED_REVIEW_TOKENS_PER_DRAFT))
    if ensemble.synthesizer and n > 1:
        costs.append(call_cost(ensemble.synthesizer, read_all, ASSUMED_ANSWER_TOKENS))
    if any(c is None for c in costs):
        return None
    return round(sum(c for c in costs if c is not None), 6)


def model_warnings(ensemble: Ensemble) -> list[str]:
    """A warning, with the closest ids, for each model not in its provider's cached listing."""
    refs = dict.fromkeys((r.ref, r.provider.name, r.model_id) for _, r in ensemble.roles)
    return [w for ref, provider, model_id in refs if (w := unlisted_warning(ref, provider, model_id))]


def ensemble_list_of(registry: EnsembleRegistry) -> EnsembleList:
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
            models=[ModelInfo(role=role, model=r.ref, priced=r.provider.kind == "local" or price_for(r.ref) is not None)
                    for role, r in e.roles],
            estimated_cost_usd=estimate_cost(e),
            warnings=model_warnings(e),
        ))
    return EnsembleList(
        ensembles=infos, default=default, default_reason=why,
        broken_files={name: str(exc) for name, exc in registry.errors.items()},
    )
