"""What a fused answer says about itself on the model API: usage summed over every call of the run
(with its cost, as OpenRouter reports `usage.cost`), the `fusion` field, and the `x-fusion-*` headers."""

from __future__ import annotations

from typing import Any

from ...fusion.result import FusionResult, Stage
from ..confidence import confidence_of


def usage_of(result: FusionResult) -> dict[str, Any]:
    """OpenAI's usage names, summed over drafts, review and synthesis, plus `cost` in US dollars
    (null when no call's cost is known; `fusion.cost_complete` says whether every one was)."""
    t = result.totals
    return {"prompt_tokens": t.input_tokens, "completion_tokens": t.output_tokens,
            "total_tokens": t.input_tokens + t.output_tokens, "cost": t.cost_usd}


def _stage(role: str, stage: Stage) -> dict[str, Any]:
    return {"role": role, "label": None, "model": stage.model, "status": stage.status, "error": stage.error,
            "latency_s": stage.latency_s, "input_tokens": stage.input_tokens, "output_tokens": stage.output_tokens,
            "cost_usd": stage.cost_usd, "cached": stage.cached, "weight": None, "score": None}


def fusion_field(result: FusionResult, model: str) -> dict[str, Any]:
    """The run's metadata: documented in docs/model-api.md."""
    models = [
        {"role": "drafter", "label": d.label, "model": d.model, "status": d.status, "error": d.error,
         "latency_s": d.latency_s, "input_tokens": d.input_tokens, "output_tokens": d.output_tokens,
         "cost_usd": d.cost_usd, "cached": d.cached, "weight": d.weight,
         "score": round(d.scores.overall, 2) if d.scores else None}
        for d in result.drafts
    ]
    models += [_stage("reviewer", result.review), _stage("synthesizer", result.synthesis)]
    t = result.totals
    return {
        "run_id": result.run_id, "model": model, "ensemble": result.ensemble,
        "answer_source": result.answer_source,
        "confidence": confidence_of(result).model_dump(mode="json"),
        "analysis": result.analysis.model_dump(mode="json") if result.analysis else None,
        "models": models,
        "cost_usd": t.cost_usd, "cost_complete": t.cost_complete, "wall_s": t.wall_s,
        "degraded": result.degraded, "degraded_reasons": result.degraded_reasons,
        "run_uri": f"run://{result.run_id}",
    }


def start_headers(run_id: str, ensemble: str) -> dict[str, str]:
    """What is known when a run starts: all a stream's headers can say (the rest comes in its last event)."""
    return {"x-fusion-run-id": run_id, "x-fusion-ensemble": ensemble}


def result_headers(result: FusionResult) -> dict[str, str]:
    t = result.totals
    return {
        **start_headers(result.run_id, result.ensemble),
        "x-fusion-answer-source": result.answer_source,
        "x-fusion-confidence": confidence_of(result).level,
        "x-fusion-cost-usd": "unknown" if t.cost_usd is None else f"{t.cost_usd:.8f}".rstrip("0").rstrip("."),
        "x-fusion-cost-complete": "true" if t.cost_complete else "false",
        "x-fusion-degraded": "true" if result.degraded else "false",
        "x-fusion-wall-s": f"{t.wall_s:.3f}",
    }


def cut_by_limit(result: FusionResult) -> bool:
    """The answer stopped at the synthesizer's token limit (OpenAI `length`, Anthropic `max_tokens`)."""
    return result.answer_source == "synthesis" and result.synthesis.truncated


def why_replaced(result: FusionResult) -> str:
    """Why a stream's text was not the answer, for the note in front of the answer."""
    if result.answer_source == "best_draft":
        return f"the synthesis {result.synthesis.status}; the answer is the best-weighted draft"
    return "the synthesis was written again after a retry"
