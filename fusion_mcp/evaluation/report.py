"""The report: per target × strategy accuracy (Wilson 95% CI), cost, latency and the Pareto front;
written as results.json, results.md, items.jsonl and cost_accuracy.png, and printed as a rich table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config.pricing import cost_column
from .datasets import Dataset
from .runner import EvalRun
from .strategies import BASELINE, NOTES, ORACLE, Outcome, gold_text

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval: sound at small n and at 0% or 100%, unlike the normal approximation."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact at the ends, not 0.9999999
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    target: str
    strategy: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    unparseable: int
    failed: int
    cost_usd: float | None  # None: no call's cost is known
    cost_complete: bool  # False: some calls' cost is unknown, so cost_usd is a lower bound
    cost_per_item_usd: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    pareto: bool = False
    note: str = ""

    @property
    def label(self) -> str:
        return self.target if self.strategy == "baseline" else f"{self.target} · {self.strategy}"


def build_rows(run: EvalRun) -> list[Row]:
    rows: list[Row] = []
    for target in run.targets:
        records = [r for r in run.records if r.target == target.name]
        for name in target.strategies:
            outcomes = [r.outcomes[name] for r in records if name in r.outcomes]
            note = "the model alone (reference run)" if target.baseline else NOTES.get(name.split(":", 1)[0], "")
            rows.append(summarize(target.name, name, outcomes, note))
    mark_pareto(rows)
    return rows


def summarize(target: str, strategy: str, outcomes: list[Outcome], note: str = "") -> Row:
    """One row from one strategy's outcomes on a list of items."""
    n = len(outcomes)
    correct = sum(o.correct for o in outcomes)
    # Cost is that of the calls that returned; a failed call (counted under `failed`) adds none.
    answered = [o for o in outcomes if o.failed is None]
    known = [o.cost_usd for o in answered if o.cost_usd is not None]
    complete = all(o.cost_complete and o.cost_usd is not None for o in answered)
    cost = round(sum(known), 10) if known else None
    latencies = [o.latency_s for o in outcomes if o.latency_s is not None and o.failed is None]
    low, high = wilson(correct, n)
    return Row(
        target=target, strategy=strategy, n=n, correct=correct, accuracy=correct / n if n else 0.0,
        ci_low=low, ci_high=high, unparseable=sum(o.unparseable for o in outcomes),
        failed=sum(o.failed is not None for o in outcomes), cost_usd=cost, cost_complete=complete,
        cost_per_item_usd=(cost / n if cost is not None and n else None),
        latency_p50_s=percentile(latencies, 50), latency_p95_s=percentile(latencies, 95), note=note,
    )


def mark_pareto(rows: list[Row]) -> None:
    """The rows no other row beats on both cost and accuracy. Only rows whose cost is fully known
    compete, and never the oracle (a ceiling, not a strategy)."""
    eligible = [r for r in rows if r.cost_usd is not None and r.cost_complete and r.strategy != ORACLE and r.n]
    for r in eligible:
        r.pareto = not any(
            o is not r and o.cost_per_item_usd <= r.cost_per_item_usd and o.accuracy >= r.accuracy  # type: ignore[operator]
            and (o.cost_per_item_usd < r.cost_per_item_usd or o.accuracy > r.accuracy)  # type: ignore[operator]
            for o in eligible
        )


# -- rendering ---------------------------------------------------------------------------------


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


COLUMNS = ["ensemble / model", "strategy", "accuracy", "95% CI", "n", "unparseable", "failed",
           "cost", "cost/item", "p50", "p95", "Pareto"]


def table_cells(rows: list[Row]) -> list[list[str]]:
    """One list of cells per row, COLUMNS order; each cost column at one precision."""
    totals = cost_column([r.cost_usd for r in rows])
    per_item = cost_column([r.cost_per_item_usd for r in rows])
    out = []
    for r, total, each in zip(rows, totals, per_item, strict=False):
        strategy = r.strategy + (" (ceiling)" if r.strategy == ORACLE else "")
        if r.strategy == BASELINE:
            strategy = "baseline (model alone)"
        at_least = "" if r.cost_complete or r.cost_usd is None else "≥ "
        out.append([
            r.target, strategy, f"{r.accuracy:.1%}", f"{r.ci_low:.1%}–{r.ci_high:.1%}", str(r.n), str(r.unparseable),
            str(r.failed), at_least + total, at_least + each, fmt_s(r.latency_p50_s), fmt_s(r.latency_p95_s),
            "✓" if r.pareto else "",
        ])
    return out


def markdown(rows: list[Row], dataset: Dataset, run: EvalRun) -> str:
    from .verdict import sentences  # the verdict reads rows: imported here, not at the top

    verdict = sentences(rows, run)
    lines = [
        f"**Verdict.** {verdict[0]}", "", *(f"- {v}" for v in verdict[1:]), "",
        f"Dataset: **{dataset.name}** ({dataset.source}); {len(run.items)} of {dataset.total} items"
        + (f" (seeded sample, seed {dataset.seed})" if dataset.seed is not None else "") + ".",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in table_cells(rows)]
    lines += ["", summary_line(run)]
    if run.stopped:
        lines.append(f"Stopped early: {run.stopped}.")
    lines += [
        "",
        "Accuracy counts unparseable and failed answers as wrong. Cost per strategy is that of the calls it "
        "needs (vote, oracle and single: the drafts; best-reviewed: drafts + review; fuse: all), as charged "
        "when first made; latency is the strategy's critical path (p50/p95 over items). Oracle is a ceiling: "
        "right when any draft is right.",
    ]
    return "\n".join(lines) + "\n"


def summary_line(run: EvalRun) -> str:
    unknown = f", {run.unknown_cost_calls} call(s) of unknown cost" if run.unknown_cost_calls else ""
    return (f"Run: wall {run.wall_s:.1f} s, {run.calls} model calls ({run.cached_calls} from the cache), "
            f"spent ${run.spent_usd:.4f} this run{unknown}.")


NARROW_COLUMNS = ["ensemble / model", "strategy", "accuracy", "95% CI", "n", "cost/item", "p50"]
WIDE = 140  # below this the table keeps NARROW_COLUMNS and folds long names instead of cutting them


def rich_table(rows: list[Row], width: int = WIDE) -> Table:
    columns = COLUMNS if width >= WIDE else NARROW_COLUMNS
    table = Table(header_style="bold", box=None, pad_edge=False)
    for col in columns:
        text = col in ("ensemble / model", "strategy")
        table.add_column(col, justify="left" if text else "right", overflow="fold", no_wrap=not text,
                         min_width=(16 if col == "strategy" else 8) if text else None)
    for r, cells in zip(rows, table_cells(rows), strict=False):
        # Text, not markup: a model id such as `x:y:z` must not turn into an emoji or a style
        table.add_row(*(Text(cells[COLUMNS.index(c)]) for c in columns), style="bold" if r.pareto else None)
    return table


def plot(rows: list[Row], path: Path, title: str, latency_front: list[bool] | None = None) -> None:
    """Accuracy (with its 95% CI) against cost per item, and against p50 latency; the cost front
    (`Row.pareto`) joined, and the latency front too when `latency_front` marks it row by row.

    Points carry short numbers and one legend names them, so nearby rows stay legible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5))
    palette = plt.get_cmap("tab10")
    colours = [palette(i) for i in range(palette.N)]
    markers = "osDv^P<X>hp*d"
    number = {id(r): i + 1 for i, r in enumerate(rows)}
    fast = {id(r) for r, on in zip(rows, latency_front or [], strict=False) if on}
    panels = [
        (axes[0], "cost per item (USD)", lambda r: r.cost_per_item_usd, lambda r: r.pareto),
        (axes[1], "latency p50 (s)", lambda r: r.latency_p50_s, lambda r: id(r) in fast),
    ]
    handles = {}
    for ax, xlabel, xof, on_front in panels:
        shown = [r for r in rows if xof(r) is not None and r.n]
        spots: dict[tuple[float, float], list[str]] = {}
        for r in shown:
            x, y = xof(r), r.accuracy * 100
            err = [[max(0.0, y - r.ci_low * 100)], [max(0.0, r.ci_high * 100 - y)]]
            i = number[id(r)] - 1  # each row its own colour and marker (pairs repeat only after 130 rows)
            marker, colour = markers[i % len(markers)], colours[(i + i // len(markers)) % len(colours)]
            front = on_front(r)
            handles[number[id(r)]] = ax.errorbar(
                [x], [y], yerr=err, fmt=marker, capsize=3, color=colour, markersize=11 if front else 7,
                markeredgecolor="black" if front else colour, markeredgewidth=1.5 if front else 1,
                mfc="none" if r.strategy == ORACLE else colour)
            spots.setdefault((round(x, 9), round(y, 6)), []).append(str(number[id(r)]))
        for (x, y), names in spots.items():
            ax.annotate(",".join(names), (x, y), textcoords="offset points", xytext=(6, 3), fontsize=8)
        front = sorted((r for r in shown if on_front(r)), key=lambda r: xof(r) or 0.0)
        if len(front) > 1:
            ax.plot([xof(r) for r in front], [r.accuracy * 100 for r in front], "--", color="grey")
        if xlabel.startswith("cost"):
            hidden = [str(number[id(r)]) for r in rows if xof(r) is None]
            if hidden:
                ax.text(0.01, 0.01, "not shown, cost unknown: " + ", ".join(hidden), transform=ax.transAxes, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%) with 95% CI")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    tags = {ORACLE: " (ceiling)", BASELINE: " (baseline: the model alone)"}
    legend = [f"{number[id(r)]}  {r.label}{tags.get(r.strategy, '')}: {r.accuracy:.1%}"
              + ("  [Pareto]" if r.pareto else "") for r in rows]
    fig.legend([handles[number[id(r)]] for r in rows if number[id(r)] in handles],
               [text for r, text in zip(rows, legend, strict=False) if number[id(r)] in handles],
               loc="lower center", ncol=2, fontsize=8, frameon=False)
    fronts = "the cost–accuracy Pareto front" if latency_front is None else "each panel's Pareto front"
    fig.suptitle(title + f"  (black edge: on {fronts}, dashed; hollow: oracle ceiling)")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * ((len(rows) + 1) // 2), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def item_lines(run: EvalRun) -> list[dict[str, Any]]:
    """Per item and target: the gold answer, each strategy's extracted answer, and the texts."""
    out = []
    for r in run.records:
        entry: dict[str, Any] = {
            "target": r.target, "item": r.item.id, "gold": gold_text(r.item), "error": r.error,
            "outcomes": {name: asdict(o) for name, o in r.outcomes.items()},
        }
        if r.result is not None:
            entry["answer"] = r.result.answer
            entry["drafts"] = [{"model": d.model, "status": d.status, "weight": d.weight, "text": d.text}
                               for d in r.result.drafts]
            entry["review"] = r.result.review.status
            entry["synthesis"] = r.result.synthesis.status
        out.append(entry)
    return out


def write(out_dir: Path, rows: list[Row], dataset: Dataset, run: EvalRun, config: dict[str, Any]) -> dict[str, Path]:
    """results.json, results.md, items.jsonl and cost_accuracy.png under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("results.json", "results.md", "items.jsonl", "cost_accuracy.png")}
    payload = {
        "dataset": {"name": dataset.name, "source": dataset.source, "total": dataset.total,
                    "evaluated": len(run.items), "seed": dataset.seed},
        "config": config,
        "run": {"wall_s": run.wall_s, "spent_usd": run.spent_usd, "calls": run.calls, "cached_calls": run.cached_calls,
                "unknown_cost_calls": run.unknown_cost_calls, "stopped": run.stopped,
                "max_cost_usd": run.max_cost_usd},
        "rows": [asdict(r) | {"label": r.label} for r in rows],
    }
    paths["results.json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    paths["results.md"].write_text(markdown(rows, dataset, run), encoding="utf-8")
    with paths["items.jsonl"].open("w", encoding="utf-8") as fh:
        for line in item_lines(run):
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    plot(rows, paths["cost_accuracy.png"], f"{dataset.name}: {len(run.items)} items")
    return paths


def print_report(console: Console, rows: list[Row], dataset: Dataset, run: EvalRun, paths: dict[str, Path]) -> None:
    console.print(f"[bold]{dataset.name}[/]: {len(run.items)} of {dataset.total} items", highlight=False)
    from .verdict import sentences

    for line in sentences(rows, run):
        console.print(line, markup=False, highlight=False)
    console.print(rich_table(rows, console.width))
    if console.width < WIDE:
        console.print("bold: on the cost–accuracy Pareto front; all columns in results.md", style="dim")
    console.print(summary_line(run), markup=False, highlight=False)
    if run.stopped:
        console.print(f"stopped early: {run.stopped}", style="yellow", markup=False, highlight=False)
    console.print("written:", markup=False, highlight=False)
    for p in paths.values():
        console.print(f"  {p}", markup=False, highlight=False, overflow="fold")
