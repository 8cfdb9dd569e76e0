"""The one cost model: how text becomes tokens and tokens become dollars, for every estimate made
before a call: the spending cap (fusion/estimate.py, fusion/budget.py), `list_ensembles` (the cap's
bound for a reference question, so the two always agree) and `tune`'s estimate (evaluation/tune_cost.py).

A prompt is counted at one token per CHARS_PER_TOKEN characters, on the high side, plus a few per
message; a call's output at its limit when a bound is wanted (the cap), or at a typical length when an
expected cost is (tune). Prices come from the `Pricing` each caller hands in (config/pricing.py, built
from the settings); the local model is free; a web search adds its fixed fee.
"""

from __future__ import annotations

import math

from .ensembles import ModelRole
from .pricing import Price, Pricing

CHARS_PER_TOKEN = 3.0
TOKENS_PER_MESSAGE = 8
DEFAULT_OUTPUT_LIMIT = 2048  # a role with no max_tokens (and no provider default) is counted, and capped, here
WEB_SEARCH_USD = 0.02  # OpenRouter's web plugin: 5 results by default, at $4 per 1,000 results (Exa), per call
# The question `list_ensembles` prices a call for (about this many tokens, no context).
REFERENCE_QUESTION_TOKENS = 500
# Typical output lengths, for expected (not bounding) costs: tune's estimate.
TYPICAL_DRAFT_TOKENS = 600
TYPICAL_REVIEW_TOKENS_PER_DRAFT = 100
TYPICAL_ANSWER_TOKENS = 600


def tokens_in(text: str) -> int:
    """Tokens a text counts for: one per CHARS_PER_TOKEN characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def reference_question() -> str:
    """A question of REFERENCE_QUESTION_TOKENS tokens under this model's counting."""
    return "x" * int(REFERENCE_QUESTION_TOKENS * CHARS_PER_TOKEN)


def output_limit(role: ModelRole) -> int:
    """The output cap the role's calls are sent with, or the one a spending cap sends them with."""
    return role.max_tokens or role.provider.default_max_tokens or DEFAULT_OUTPUT_LIMIT


def role_price(pricing: Pricing, role: ModelRole) -> Price | None:
    """The price estimates use; the local model is free; None when no price is known."""
    if role.provider.kind == "local":
        return Price(input=0.0, output=0.0)
    return pricing.price_for(role.ref)


def call_cost(pricing: Pricing, role: ModelRole, input_tokens: int, output_tokens: int | None = None) -> float | None:
    """One call of `role` reading `input_tokens` and writing `output_tokens` (None: up to its limit,
    the most it can bill; never past the limit), at `pricing`'s prices; None without a price."""
    price = role_price(pricing, role)
    if price is None:
        return None
    limit = output_limit(role)
    written = limit if output_tokens is None else min(output_tokens, limit)
    searches = role.web or role.model_id.endswith(":online")  # OpenRouter's suffix for the same plugin
    return price.cost(input_tokens, written) + (WEB_SEARCH_USD if searches else 0.0)
