"""How the CLI renders a run for a terminal."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..config.pricing import cost_column, format_cost
from ..fusion.events import ProgressEvent
from ..fusion.result import FusionResult, Totals
from ..redaction import redact


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


class LiveProgress:
    """A per-model status table that updates as drafts, review and synthesis finish, with the
    synthesis shown as it is written (its last lines)."""

    SHOWN_LINES = 12
    SHOWN_CHARS = 4000  # more than 12 lines hold: only this tail is redacted and drawn on each piece

    def __init__(self, console: Console, models: list[tuple[str, str]]) -> None:
        self.console = console
        self.rows = {f"{stage}:{i}": [stage, model, "running…", ""] for i, (stage, model) in enumerate(models)}
        self._pending = {stage: [k for k in self.rows if k.startswith(stage)]
                         for stage in ("draft", "review", "synthesis")}
        self._written: list[str] = []
        self.live = Live(self._view(), console=console, refresh_per_second=8, transient=True)

    def _view(self) -> Group:
        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("stage", "model", "status", "time"):
            table.add_column(col)
        for row in self.rows.values():
            table.add_row(*(Text(c) for c in row))  # model ids and errors as text, never markup
        if not self._written:
            return Group(table)
        # the shown tail, redacted each time: a key split across pieces is caught once 12 of its characters are in
        tail = redact("".join(self._written)[-self.SHOWN_CHARS:]).splitlines()[-self.SHOWN_LINES:]
        return Group(table, Text(""), Text("\n".join(tail), style="dim"))

    def text(self, piece: str) -> None:
        """A piece of the synthesis, as it is written."""
        self._written.append(piece)
        self.live.update(self._view())

    async def __call__(self, event: ProgressEvent) -> None:
        pending = self._pending.get(event.stage) or []
        key = next((k for k in pending if self.rows[k][1] == event.model), pending[0] if pending else None)
        if key is None:
            return
        pending.remove(key)
        self.rows[key][2] = event.status or "done"
        self.rows[key][3] = f"{event.latency_s:.1f} s" if event.latency_s else ""
        self.live.update(self._view())


def _heading(console: Console, title: str) -> None:
    """A rule with the title in it, or the whole title on its own lines when it would be cut."""
    if len(Text.from_markup(title)) + 6 <= console.width:
        console.rule(title, style="dim")
    else:
        console.print(title, style="dim", overflow="fold")


WIDE = 110  # below this, the drafts table keeps the columns a reader needs and wraps the rest


def print_sources(console: Console, result: FusionResult) -> None:
    """The web sources the answer's [n] point to, the tool calls made, and citations no draft read."""
    calls = sum(d.tool_calls for d in result.drafts) + result.review.tool_calls
    if calls:
        console.print(f"web: {calls} tool call(s)", markup=False, highlight=False)
    for s in result.sources:
        title = f" {s.title}" if s.title else ""
        console.print(f"[{s.n}]{title} <{s.url}> (drafts {', '.join(s.drafts)})", markup=False, highlight=False)
    for flag in result.citation_flags:
        console.print(f"unsupported citation: {flag}", style="yellow", markup=False, highlight=False)


def print_result(console: Console, result: FusionResult, show_drafts: bool) -> None:
    console.print(result.answer or "", markup=False, highlight=False)
    console.print()
    flag = " [bold yellow](degraded)[/]" if result.degraded else ""
    _heading(console, f"run {result.run_id} · ensemble {result.ensemble} · answer from {result.answer_source}{flag}")
    wide = console.width >= WIDE
    cols = ["draft", "model", "status", "weight", "scores c/a/l", "agree", "time", "tokens", "cost"]
    if not wide:
        cols = ["draft", "model", "status", "weight", "scores", "time", "cost"]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in cols:
        table.add_column(col, overflow="fold", min_width=len(col) if col in ("model", "status") else None,
                         no_wrap=col not in ("model", "status"))
    costs = cost_column([d.cost_usd if d.status == "ok" else None for d in result.drafts])
    for d, cost in zip(result.drafts, costs, strict=False):
        tokens = (d.input_tokens or 0) + (d.output_tokens or 0) if d.status == "ok" else 0
        cells = {
            "draft": d.label, "model": d.model, "status": d.status if not d.error else f"{d.status}: {d.error}"[:70],
            "weight": f"{d.weight:.0%}" if d.status == "ok" else "-", "scores c/a/l": scores_text(result, d.label),
            "scores": scores_text(result, d.label), "agree": f"{d.agreement:.2f}" if d.agreement is not None else "-",
            "time": f"{d.latency_s:.1f} s", "tokens": str(tokens) if tokens else "-",
            "cost": cost if d.status == "ok" else "-",
        }
        table.add_row(*(Text(cells[c]) for c in cols))
    console.print(table)
    if not wide:
        console.print("scores: consistency/accuracy/completeness, 0-10, from the reviewer", style="dim")
    for name, stage in (("review", result.review), ("synthesis", result.synthesis)):
        detail = f" ({stage.model}, {stage.latency_s:.1f} s)" if stage.model else ""
        error = f": {stage.error}" if stage.error else ""
        console.print(f"{name}: {stage.status}{detail}{error}", markup=False, highlight=False)
    console.print("total: " + totals_line(result.totals), markup=False, highlight=False)
    for reason in result.degraded_reasons:
        console.print(f"degraded: {reason}", style="yellow", markup=False, highlight=False)
    print_sources(console, result)
    if show_drafts:
        for d in result.drafts:
            if not d.text:
                continue
            _heading(console, f"draft {d.label} · {d.model}")
            console.print(d.text, markup=False, highlight=False)
            if d.scores is not None:
                why = d.scores.reason.strip() or "(the reviewer gave no reason)"
                console.print(f"reviewer ({scores_text(result, d.label)}): {why}", style="cyan",
                              markup=False, highlight=False)
