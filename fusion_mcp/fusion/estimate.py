"""What a run may cost at most, worked out before any call: prompt tokens and each role's output
limit, times the model's price. Used to refuse a run over its spending cap (`max_cost_usd`) and to
check each call against what is left of the cap.

Tokens and prices come from the one cost model (config/cost_model.py): the prompt is counted on the
high side; a role with no `max_tokens` is counted at DEFAULT_OUTPUT_LIMIT and, under a cap, sent with
that limit, so the estimate bounds what the call can bill. `list_ensembles` shows `reference_estimate`:
this same bound for a reference question, so the listing and the cap agree. Prices come from the
`Pricing` the caller hands in (the engine's, built from the settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.cost_model import (
    CHARS_PER_TOKEN,
    DEFAULT_OUTPUT_LIMIT,
    TOKENS_PER_MESSAGE,
    call_cost,
    output_limit,
    reference_question,
    tokens_in,
)
from ..config.ensembles import Ensemble, ModelRole
from ..config.pricing import Pricing
from ..providers import ChatRequest
from ..web.config import WebConfig
from .requests import draft_request, review_request, synthesis_request
from .result import Analysis, Draft

__all__ = ["DEFAULT_OUTPUT_LIMIT", "Estimate", "call_cost", "estimate_run", "estimate_synthesis", "output_limit",
           "prompt_tokens", "reference_estimate"]


def prompt_tokens(request: ChatRequest) -> int:
    return sum(tokens_in(m.content) + TOKENS_PER_MESSAGE for m in request.messages)


def tool_loop_cost(pricing: Pricing, role: ModelRole, input_tokens: int, web: WebConfig) -> float | None:
    """The most a role with web tools can cost: `max_tool_calls` turns that each add a tool result (a page
    cut at fetch_max_chars) and the turn's output to the prompt, the final turn, and a search per call."""
    per_turn = math.ceil(web.fetch_max_chars / CHARS_PER_TOKEN) + 2 * TOKENS_PER_MESSAGE + output_limit(role)
    total = 0.0
    for turn in range(web.max_tool_calls + 1):
        cost = call_cost(pricing, role, input_tokens + turn * per_turn)
        if cost is None:
            return None
        total += cost
    return total + (web.max_tool_calls * web.price_per_search if "web_search" in role.tools else 0.0)


@dataclass
class Estimate:
    """The estimate of a run at `pricing`'s prices, call by call, and the models without a known price."""

    pricing: Pricing
    calls: list[tuple[str, str, float | None]] = field(default_factory=list)  # (stage, model, USD)

    @property
    def unpriced(self) -> list[str]:
        return list(dict.fromkeys(model for _, model, usd in self.calls if usd is None))

    @property
    def total_usd(self) -> float:
        return sum(usd for _, _, usd in self.calls if usd is not None)

    def add(self, stage: str, role: ModelRole, input_tokens: int, web: WebConfig | None = None) -> None:
        cost = tool_loop_cost(self.pricing, role, input_tokens, web) if role.tools and web and web.max_tool_calls \
            else call_cost(self.pricing, role, input_tokens)
        self.calls.append((stage, role.ref, cost))

    def breakdown(self) -> str:
        return ", ".join(f"{stage} {model} {'unknown' if usd is None else f'${usd:.4f}'}"
                         for stage, model, usd in self.calls)


def _placeholders(ensemble: Ensemble) -> list[Draft]:
    """Stand-ins for the drafts, sized at each drafter's output limit."""
    return [Draft(label=chr(65 + i) if i < 26 else f"D{i + 1}", model=d.ref, status="ok",
                  text="x" * int(output_limit(d) * CHARS_PER_TOKEN)) for i, d in enumerate(ensemble.drafters)]


def estimate_run(ensemble: Ensemble, question: str, context: str | None, pricing: Pricing, *,
                 synthesize: bool = True) -> Estimate:
    """Every call a fresh run may make: each draft, the review, and (unless compare-only) the synthesis."""
    est = Estimate(pricing)
    for d in ensemble.drafters:
        est.add("draft", d, prompt_tokens(draft_request(d, question, context)), ensemble.web)
    drafts = _placeholders(ensemble)
    if ensemble.reviewer and len(drafts) > 1:
        est.add("review", ensemble.reviewer, prompt_tokens(review_request(
            ensemble.reviewer, question, context, drafts, "0" * 12, analysis=ensemble.review_analysis)), ensemble.web)
    if synthesize and ensemble.synthesizer and len(drafts) > 1:
        analysis_tokens = output_limit(ensemble.reviewer) if ensemble.reviewer else 0
        tokens = prompt_tokens(synthesis_request(ensemble.synthesizer, question, context, drafts, "0" * 12))
        est.add("synthesis", ensemble.synthesizer, tokens + analysis_tokens, ensemble.web)
    return est


def estimate_synthesis(ensemble: Ensemble, question: str, context: str | None, drafts: list[Draft],
                       analysis: Analysis | None, pricing: Pricing) -> Estimate:
    """The one call a run resumed from earlier drafts (and their analysis) makes."""
    est = Estimate(pricing)
    ok = [d for d in drafts if d.status == "ok"]
    if ensemble.synthesizer and len(ok) > 1:
        est.add("synthesis", ensemble.synthesizer,
                prompt_tokens(synthesis_request(ensemble.synthesizer, question, context, ok, "0" * 12, analysis)))
    return est


def reference_estimate(ensemble: Ensemble, pricing: Pricing) -> float | None:
    """What `list_ensembles` shows: the most one fused answer can cost for the cost model's reference
    question (no context), exactly as the spending cap counts it; None when a price is unknown."""
    est = estimate_run(ensemble, reference_question(), None, pricing)
    return None if est.unpriced else round(est.total_usd, 6)
