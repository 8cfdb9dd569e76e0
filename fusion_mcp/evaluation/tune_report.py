"""The tune report: single models, the panel search, the confirmed options with their held-out scores
and paired tests, the recommendation; printed as rich tables and written as tune.json, tune.md and
pareto.png (eval's plot, the front chosen on the tune items, the points at their held-out accuracy)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config.pricing import format_cost
from .panels import PanelScore
from .recommend import Option, by_accuracy
from .report import Row, fmt_s, plot
from .tune import Tune

PANELS_SHOWN = 10


def _pct(row: Row | None) -> str:
    return "-" if row is None else f"{row.accuracy:.1%}"


def _ci(row: Row | None) -> str:
    return "-" if row is None else f"{row.accuracy:.1%} [{row.ci_low:.0%}–{row.ci_high:.0%}]"


def panel_table(t: Tune) -> tuple[list[str], list[list[str]]]:
    cols = ["panel (vote order)", "vote", "oracle", "agreement", "cost/item", "latency p50", "confirmed"]
    short = {p.members for p in t.shortlisted}
    rows = [[p.label, _pct(p.vote), f"{p.oracle:.1%}", "-" if p.agreement is None else f"{p.agreement:.0%}",
             format_cost(p.vote.cost_per_item_usd, p.vote.cost_complete), fmt_s(p.vote.latency_p50_s),
             "✓" if p.members in short else ""] for p in t.panels[:PANELS_SHOWN]]
    return cols, rows


def option_table(t: Tune) -> tuple[list[str], list[list[str]]]:
    held = "held-out" if t.held_items else "all (no held-out)"
    cols = ["option", "tune", f"{held} [95% CI]", "p vs best single", "cost/item", "latency p50", "front", ""]
    rows = []
    for o in by_accuracy(t.options):
        test = o.versus_best
        front = "/".join(x for x, on in (("cost", o.cost_front), ("latency", o.latency_front)) if on)
        mark = "recommended" if o is t.recommended else ("best single" if o is t.best_single else "")
        rows.append([o.label, _pct(o.tune), _ci(o.report), "-" if test is None else f"{test.p_value:.2g}",
                     format_cost(o.tune.cost_per_item_usd if o.tune else None,
                                 o.tune.cost_complete if o.tune else True),
                     fmt_s(o.tune.latency_p50_s if o.tune else None), front, mark])
    return cols, rows


def _rich(cols: list[str], rows: list[list[str]], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=None)
    for i, c in enumerate(cols):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*(Text(str(c)) for c in r), style="bold" if r[-1] == "recommended" else None)
    return table


def _fits(cols: list[str], rows: list[list[str]], width: int) -> bool:
    """Whether the table fits `width` with every cell whole (rich pads each column by 1 on each side)."""
    return sum(max(len(str(x)) for x in [c, *(r[i] for r in rows)]) + 2 for i, c in enumerate(cols)) <= width


def _stacked(cols: list[str], rows: list[list[str]], title: str, width: int) -> list[Text]:
    """A narrow terminal's table: each row's name whole on its own line, its figures under it as
    `column value` pairs, wrapped; no name is cut, so no two rows look alike."""
    import textwrap

    out = [Text(title, style="bold")]
    for r in rows:
        mark = r[-1] if cols[-1] == "" else (cols[-1] if r[-1] else "")
        name = r[0] + (f"  ({mark})" if mark else "")
        out.append(Text("\n".join(textwrap.wrap(name, width, subsequent_indent="    ")),
                        style="bold" if r[-1] == "recommended" else ""))
        figures = " · ".join(f"{c} {v}" for c, v in zip(cols[1:-1], r[1:-1], strict=True) if v not in ("", "-"))
        out.append(Text("\n".join(textwrap.wrap(figures, width, initial_indent="    ", subsequent_indent="    "))))
    return out


def _print_table(console: Console, cols: list[str], rows: list[list[str]], title: str) -> None:
    if _fits(cols, rows, console.width):
        console.print(_rich(cols, rows, title))
        return
    for line in _stacked(cols, rows, title, console.width):
        console.print(line, markup=False, highlight=False)


def _md(cols: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]


def headline(t: Tune) -> str:
    d, s = t.dataset, t.settings
    held = (f"{len(t.held_items)} held out (seed {s.seed}, --holdout {s.holdout:g})" if t.held_items
            else "none held out")
    return (f"{d.name}: {len(t.tune_items) + len(t.held_items)} of {d.total} items; {len(t.tune_items)} to tune on, "
            f"{held}; {len(t.singles)} candidates, {len(t.panels)} panels of 2..{s.panel_size} scored from the drafts, "
            f"{len(t.shortlisted)} confirmed with review and synthesis ({len(t.confirmed)} runs)")


def run_line(t: Tune) -> str:
    return (f"Run: {t.wall_s:.1f} s; {t.calls - t.cached_calls} calls made upstream, {t.cached_calls} answered by "
            f"the call cache or reused from the drafts; spent ${t.spent_usd:.4f} ({t.estimate.text()}).")


def recommendation_lines(t: Tune) -> list[str]:
    assert t.recommended is not None
    return [f"Recommended ({t.settings.objective}): {t.recommended.label}"] + [f"  - {r}" for r in t.reasons]


def markdown(t: Tune) -> str:
    lines = [headline(t) + ".", "", "Options (single models and confirmed panels):", ""]
    lines += _md(*option_table(t))
    lines += ["", f"Panel search on the tune items (top {min(PANELS_SHOWN, len(t.panels))} of {len(t.panels)}):", ""]
    lines += _md(*panel_table(t))
    lines += ["", *recommendation_lines(t), "", run_line(t)]
    if t.stopped:
        lines.append(f"Stopped early: {t.stopped}.")
    return "\n".join(lines) + "\n"


def _plot_rows(t: Tune) -> tuple[list[Row], list[bool]]:
    shown = [o for o in by_accuracy(t.options) if o.report is not None]
    rows = [replace(o.report, target=o.label, strategy="single" if o.single else "fuse", pareto=o.cost_front)
            for o in shown if o.report is not None]
    return rows, [o.latency_front for o in shown]


def _option_json(o: Option) -> dict[str, Any]:
    return {"label": o.label, "members": [c.label for c in o.members],
            "reviewer": o.reviewer.label if o.reviewer else None,
            "synthesizer": o.synthesizer.label if o.synthesizer else None,
            "tune": asdict(o.tune) if o.tune else None, "report": asdict(o.report) if o.report else None,
            "versus_best_single": asdict(o.versus_best) if o.versus_best else None,
            "cost_front": o.cost_front, "latency_front": o.latency_front}


def _panel_json(p: PanelScore) -> dict[str, Any]:
    return {"members": list(p.members), "vote": asdict(p.vote), "oracle": p.oracle, "agreement": p.agreement}


def payload(t: Tune, written: Path | None) -> dict[str, Any]:
    d = t.dataset
    return {
        "dataset": {"name": d.name, "source": d.source, "total": d.total, "sample_seed": d.seed},
        "settings": asdict(t.settings),
        "split": {"tune": [i.id for i in t.tune_items], "held_out": [i.id for i in t.held_items]},
        "estimate": asdict(t.estimate) | {"total_usd": t.estimate.total_usd},
        "run": {"wall_s": t.wall_s, "calls": t.calls, "cached_calls": t.cached_calls, "spent_usd": t.spent_usd,
                "stopped": t.stopped},
        "options": [_option_json(o) for o in by_accuracy(t.options)],
        "panels": [_panel_json(p) for p in t.panels],
        "confirmed_panels": [list(p.members) for p in t.shortlisted],
        "best_single": t.best_single.label if t.best_single else None,
        "recommended": _option_json(t.recommended) if t.recommended else None,
        "reasons": t.reasons,
        "written": str(written) if written else None,
    }


def write(out_dir: Path, t: Tune, written: Path | None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("tune.json", "tune.md", "pareto.png")}
    paths["tune.json"].write_text(json.dumps(payload(t, written), indent=2) + "\n", encoding="utf-8")
    paths["tune.md"].write_text(markdown(t), encoding="utf-8")
    rows, fast = _plot_rows(t)
    plot(rows, paths["pareto.png"], f"{t.dataset.name}: {'held-out' if t.held_items else 'all'} accuracy "
         f"({len(t.report_items)} items); fronts chosen on the tune items", latency_front=fast)
    return paths


def print_report(console: Console, t: Tune, paths: dict[str, Path], written: Path | None) -> None:
    console.print(headline(t), markup=False, highlight=False)
    _print_table(console, *option_table(t), title="Options")
    title = f"Panel search (top {min(PANELS_SHOWN, len(t.panels))} of {len(t.panels)})"
    _print_table(console, *panel_table(t), title=title)
    import textwrap

    for line in recommendation_lines(t):  # a reason's continuation lines hang under its text
        hang = " " * (len(line) - len(line.lstrip(" -")))
        console.print("\n".join(textwrap.wrap(line, console.width, subsequent_indent=hang or "    ")),
                      markup=False, highlight=False)
    console.print(run_line(t), markup=False, highlight=False)
    if t.stopped:
        console.print(f"stopped early: {t.stopped}", style="yellow", markup=False, highlight=False)
    if written:
        console.print(f"wrote ensemble: {written}", markup=False, highlight=False)
    console.print("written: " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False)
