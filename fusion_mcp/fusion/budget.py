"""A run's spending cap: refused before anything is sent when the estimate is over it, and checked
again before each call, so no call starts once the spend so far plus that call's most would pass it."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.ensembles import ModelRole
from ..config.pricing import Pricing, format_cost
from ..errors import FailureKind, FusionError, ProviderError
from ..providers import ChatRequest
from .estimate import Estimate, call_cost, output_limit, prompt_tokens


class OverBudgetError(FusionError):
    """A run refused before any call: its estimate is over the cap, or a model has no known price."""


class CallOverBudgetError(ProviderError):
    """One call not made: the spend so far plus its estimate would pass the cap."""

    kind: FailureKind = "over_budget"


def check_estimate(estimate: Estimate, cap_usd: float) -> None:
    """Raise OverBudgetError, naming the models and the estimate, unless the run fits the cap."""
    if estimate.unpriced:
        raise OverBudgetError(
            f"max_cost_usd is set but no price is known for {', '.join(estimate.unpriced)}, so the run's cost "
            "cannot be bounded: pick priced models (list_models shows prices), add a price in a "
            "FUSION_MCP_PRICES file, or drop max_cost_usd"
        )
    if estimate.total_usd > cap_usd:
        raise OverBudgetError(
            f"estimated cost up to {format_cost(estimate.total_usd)} is over max_cost_usd {format_cost(cap_usd)} "
            f"({estimate.breakdown()}); nothing was sent. Raise the cap, lower the roles' max_tokens, or pick "
            "cheaper models"
        )


@dataclass
class Budget:
    """Spend so far against a cap, with the most each call in flight may still cost reserved (at
    `pricing`'s prices: the engine's)."""

    cap_usd: float
    pricing: Pricing
    spent_usd: float = 0.0
    reserved_usd: float = 0.0

    def capped(self, role: ModelRole, request: ChatRequest) -> ChatRequest:
        """The request with the output limit its estimate assumed, so the estimate bounds it."""
        if request.max_tokens is not None:
            return request
        return request.model_copy(update={"max_tokens": output_limit(role)})

    def reserve(self, role: ModelRole, request: ChatRequest) -> float:
        """Reserve the call's most; CallOverBudgetError when it would pass the cap."""
        most = call_cost(self.pricing, role, prompt_tokens(request))
        if most is None:
            raise CallOverBudgetError(role.provider.name, role.model_id, "no known price under max_cost_usd")
        if self.spent_usd + self.reserved_usd + most > self.cap_usd:
            raise CallOverBudgetError(
                role.provider.name, role.model_id,
                f"not called: {format_cost(self.spent_usd + self.reserved_usd)} spent or in flight plus up to "
                f"{format_cost(most)} for this call would pass max_cost_usd {format_cost(self.cap_usd)}",
            )
        self.reserved_usd += most
        return most

    def settle(self, reserved: float, cost_usd: float | None) -> None:
        """The call is over: release its reservation and count what it cost (its most when unknown)."""
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += reserved if cost_usd is None else cost_usd

    def charge(self, usd: float) -> bool:
        """Count a fixed price (a web search) if it fits under the cap; False, counting nothing, if not."""
        if self.spent_usd + self.reserved_usd + usd > self.cap_usd:
            return False
        self.spent_usd += usd
        return True
