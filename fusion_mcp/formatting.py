"""Human-readable renderings shared by the CLI and the MCP server."""

from __future__ import annotations

from .fusion.result import FusionResult, Totals


def format_cost(cost: float | None, complete: bool = True, unknown: int = 0) -> str:
    """Unknown cost reads as unknown, never as $0."""
    if cost is None:
        return "unknown"
    text = f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
    if not complete:
        text = f"≥ {text} ({unknown} call(s) of unknown cost)"
    return text


def totals_line(t: Totals) -> str:
    return (
        f"{t.input_tokens + t.output_tokens:,} tokens ({t.input_tokens:,} in, {t.output_tokens:,} out) · "
        f"cost {format_cost(t.cost_usd, t.cost_complete, len(t.unknown_cost_calls))} · "
        f"wall {t.wall_s:.1f} s (drafts {t.draft_s:.1f}, review {t.review_s:.1f}, synthesis {t.synthesis_s:.1f}) · "
        f"critical path {t.critical_path_s:.1f} s"
    )


def scores_text(result: FusionResult, label: str) -> str:
    for d in result.drafts:
        if d.label == label and d.scores:
            s = d.scores
            return f"{s.consistency:.0f}/{s.accuracy:.0f}/{s.completeness:.0f}"
    return "-"
