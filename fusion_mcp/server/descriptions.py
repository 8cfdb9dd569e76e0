"""The tool descriptions a host model reads to decide when to call what, written at start-up so
they name the ensembles that exist and whether each is ready."""

from ..config.ensemble_list import ensemble_list_of
from ..config.ensemble_registry import EnsembleRegistry
from ..config.pricing import Pricing
from ..fusion.estimate import reference_estimate

_ISOLATED = ("The models do not see this conversation: put everything they need in question and context.")
_POLL = "A run past the tool-time limit answers status 'running' with a run_id: call get_run(run_id) until 'done'."
_MODELS = ("Optional per call: drafters (up to 8), reviewer, synthesizer as 'provider:model-id' (list_models); "
           "max_cost_usd refuses a run whose estimate could pass it.")


def ensembles_line(registry: EnsembleRegistry, pricing: Pricing) -> str:
    """`Ensembles: lab (default, ready, ~$0.01), budget-trio (needs OPENROUTER_API_KEY)`."""
    listing = ensemble_list_of(registry, pricing, reference_estimate)
    parts = []
    for e in listing.ensembles:
        notes = ["default"] if e.default else []
        notes.append("ready" if e.ready else "needs " + " and ".join(e.missing_keys))
        if e.estimated_cost_usd is not None:
            notes.append("free" if e.estimated_cost_usd == 0 else f"~${e.estimated_cost_usd:.2g}")
        parts.append(f"{e.name} ({', '.join(notes)})")
    return "Ensembles: " + "; ".join(parts) + "." if parts else "No ensembles are configured."


def describe(tool: str, registry: EnsembleRegistry, pricing: Pricing) -> str | None:
    """The description of `tool`, or None to keep its docstring."""
    if tool == "fused_answer":
        return (
            "Ask several LLMs the same question in parallel, have a reviewer score and compare the drafts, and get "
            "one fused answer with a confidence picture (agreement, disputed topics). For hard, high-stakes or "
            "contested questions where independent opinions pay off; not for quick lookups or chit-chat. Takes "
            "about 10-60 s and cents per call. " + _ISOLATED + " With from_run (a compare_drafts run_id), fuses "
            "those drafts without drafting again; question is then not needed. " + _MODELS + " " + _POLL + " "
            + ensembles_line(registry, pricing)
        )
    if tool == "compare_drafts":
        return (
            "Drafts from several LLMs side by side with the reviewer's analysis: consensus, contradictions with "
            "each model's stance, partial coverage, unique insights, blind spots, and per-draft scores; no "
            "synthesis. Use it to write the final answer yourself from the analysis, or to see dissent; "
            "fused_answer(from_run=run_id) fuses these drafts later. Same time and cost as fused_answer less "
            "the synthesis. " + _ISOLATED + " " + _MODELS + " " + _POLL
        )
    if tool == "list_ensembles":
        return ("The ensembles: models by role, whether their API keys are set, deadline and estimated cost. "
                "Free; calls no model.")
    if tool == "list_models":
        return ("Model ids (provider:model-id) with context length and price, from OpenRouter's and the "
                "OpenAI-compatible providers' listings, cached a day; for choosing per-call drafters, reviewer "
                "or synthesizer. Free; calls no model.")
    return None
