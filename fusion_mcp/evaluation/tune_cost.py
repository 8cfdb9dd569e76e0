"""The cost of a whole tune, estimated before any call: drafts (those not in the call cache) plus
the confirmations (review + synthesis of the shortlisted panels on every item, an upper bound).

Tokens and prices come from the one cost model (config/cost_model.py), as for the spending cap: the
real prompts counted the same way, a draft assumed to run to its typical length (or the model's
max_tokens, if lower), and a review and a synthesis to read the prompt and every draft. This is an
expected cost, not the cap's bound: a tune makes thousands of calls, most far below their limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.cost_model import (
    TYPICAL_ANSWER_TOKENS,
    TYPICAL_DRAFT_TOKENS,
    TYPICAL_REVIEW_TOKENS_PER_DRAFT,
    call_cost,
    tokens_in,
)
from ..config.ensembles import ModelRole
from ..config.pricing import Pricing, format_cost
from ..fusion.completion_cache import call_key
from ..fusion.estimate import prompt_tokens
from ..fusion.requests import draft_request
from ..prompts import template
from ..store.call_cache import SQLiteCallCache
from .candidates import Candidate
from .datasets import Item

# The instructions a review and a synthesis add to the drafts they read (the templates' own text, halved:
# one of the two is counted per call).
REVIEW_OVERHEAD_TOKENS = tokens_in(template("review_system").template + template("synthesis_system").template) // 2


@dataclass
class Estimate:
    draft_calls: int = 0
    cached_drafts: int = 0
    draft_usd: float = 0.0
    confirm_calls: int = 0
    confirm_usd: float = 0.0
    unpriced: list[str] = field(default_factory=list)  # models with no price: the estimate is unknown

    @property
    def total_usd(self) -> float | None:
        return None if self.unpriced else round(self.draft_usd + self.confirm_usd, 8)

    def text(self) -> str:
        drafts = (f"drafts {format_cost(self.draft_usd)} ({self.draft_calls - self.cached_drafts} of "
                  f"{self.draft_calls} calls to make; {self.cached_drafts} in the call cache)")
        confirm = f"confirmations at most {format_cost(self.confirm_usd)} ({self.confirm_calls} review/synthesis calls)"
        if self.unpriced:
            return (f"estimated cost: unknown, no price for {', '.join(self.unpriced)}; "
                    f"{self.draft_calls - self.cached_drafts} of {self.draft_calls} draft calls to make "
                    f"({self.cached_drafts} in the call cache), "
                    f"and at most {self.confirm_calls} review/synthesis calls")
        return f"estimated cost: {format_cost(self.total_usd)} = {drafts} + {confirm}"


def _add(est: Estimate, pricing: Pricing, role: ModelRole, input_tokens: int, output_tokens: int) -> float:
    cost = call_cost(pricing, role, input_tokens, output_tokens)
    if cost is None:
        if role.ref not in est.unpriced:
            est.unpriced.append(role.ref)
        return 0.0
    return cost


def estimate(items: list[Item], candidates: list[Candidate], reviewers: list[ModelRole | None],
             synthesizers: list[ModelRole | None], panels: int, panel_size: int,
             cache: SQLiteCallCache | None, pricing: Pricing) -> Estimate:
    """Every draft not yet in the cache, and `panels` × reviewers × synthesizers confirmations on
    every item (None: no such call), at `pricing`'s prices."""
    est = Estimate()
    for item in items:
        prompt = item.prompt()
        for c in candidates:
            request = draft_request(c.role, prompt, None)
            est.draft_calls += 1
            if cache is not None and cache.get_now(call_key(c.role.provider, c.role.model_id, request, 0)):
                est.cached_drafts += 1
                continue
            out = min(c.role.max_tokens or TYPICAL_DRAFT_TOKENS, TYPICAL_DRAFT_TOKENS)
            est.draft_usd += _add(est, pricing, c.role, prompt_tokens(request), out)
        read = tokens_in(prompt) + REVIEW_OVERHEAD_TOKENS + panel_size * TYPICAL_DRAFT_TOKENS
        for r in reviewers:
            if r is not None:
                est.confirm_usd += panels * len(synthesizers) * _add(
                    est, pricing, r, read, panel_size * TYPICAL_REVIEW_TOKENS_PER_DRAFT)
                est.confirm_calls += panels * len(synthesizers)
        for s in synthesizers:
            if s is not None:
                est.confirm_usd += panels * len(reviewers) * _add(est, pricing, s, read, TYPICAL_ANSWER_TOKENS)
                est.confirm_calls += panels * len(reviewers)
    est.draft_usd = round(est.draft_usd, 8)
    est.confirm_usd = round(est.confirm_usd, 8)
    return est


def dearest(candidates: list[Candidate], pricing: Pricing) -> ModelRole:
    """The candidate whose call costs most: the stand-in for a reviewer or synthesizer not yet chosen."""
    def cost(c: Candidate) -> float:
        found = call_cost(pricing, c.role, 1000, 1000)
        return float("inf") if found is None else found
    return max(candidates, key=cost).role
