"""The report's conclusion: each strategy against the best single model, paired on the same items.

The best single model is the most accurate of the rows that are one model alone (a `single:`
drafter read off an ensemble's drafts, or a `--baseline`). Every other strategy (not the oracle,
which is a ceiling) is compared with it by an exact McNemar test on the items both answered."""

from __future__ import annotations

from dataclasses import dataclass

from .report import Row
from .runner import EvalRun
from .stats import items_needed, mcnemar_exact
from .strategies import BASELINE, ORACLE, SINGLE

ALPHA = 0.05


@dataclass
class Comparison:
    label: str
    accuracy: float
    baseline_accuracy: float
    n: int  # items both answered (paired)
    only_this: int  # items this strategy got right and the best single model got wrong
    only_baseline: int
    p_value: float
    needed: int | None  # items a difference this size would need (80% power, 5% level)

    @property
    def verdict(self) -> str:
        if self.p_value < ALPHA:
            return "better" if self.only_this > self.only_baseline else "worse"
        return "not distinguishable at this n"


def is_single(row: Row) -> bool:
    return row.strategy == BASELINE or row.strategy.split(":", 1)[0] == SINGLE


def _correct(run: EvalRun, row: Row) -> dict[str, bool]:
    """Item id -> right or wrong, for one row."""
    return {r.item.id: r.outcomes[row.strategy].correct for r in run.records
            if r.target == row.target and row.strategy in r.outcomes}


def compare(rows: list[Row], run: EvalRun) -> tuple[Row | None, list[Comparison]]:
    """The best single model, and every other strategy compared with it."""
    singles = [r for r in rows if is_single(r) and r.n]
    if not singles:
        return None, []
    best = max(singles, key=lambda r: (r.accuracy, -singles.index(r)))
    base = _correct(run, best)
    out = []
    for row in rows:
        if row is best or row.strategy == ORACLE or is_single(row) or not row.n:
            continue
        mine = _correct(run, row)
        shared = [i for i in mine if i in base]
        b = sum(mine[i] and not base[i] for i in shared)
        c = sum(base[i] and not mine[i] for i in shared)
        out.append(Comparison(
            label=row.label, accuracy=sum(mine[i] for i in shared) / len(shared) if shared else 0.0,
            baseline_accuracy=sum(base[i] for i in shared) / len(shared) if shared else 0.0, n=len(shared),
            only_this=b, only_baseline=c, p_value=mcnemar_exact(b, c), needed=items_needed(b, c, len(shared)),
        ))
    return best, out


def sentences(rows: list[Row], run: EvalRun) -> list[str]:
    """The verdict in plain sentences, first line first."""
    best, comparisons = compare(rows, run)
    if best is None:
        return ["No single model to compare with: run `single` strategies or a --baseline."]
    lines = [f"Best single model: {best.label}, {best.accuracy:.1%} ({best.correct}/{best.n})."]
    for c in comparisons:
        line = (f"{c.label}: {c.accuracy:.1%} vs {c.baseline_accuracy:.1%} on the same {c.n} items; "
                f"right only here on {c.only_this}, only with the single model on {c.only_baseline}; "
                f"exact McNemar p = {c.p_value:.3g}: {c.verdict}")
        if c.verdict == "not distinguishable at this n":
            if c.needed is None:
                line += " (no difference observed)"
            else:
                line += f" (a difference this size would need about {c.needed} items)"
        lines.append(line + ".")
    return lines
