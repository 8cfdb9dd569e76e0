"""From measured options to one recommendation: the fronts, the objective, and the reasons in words.

Everything here reads the tune items only, except the held-out lines of the reasons, which report
what the choice scores on items it never saw, and whether those items can tell it apart from the
best single model (the exact McNemar test).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..config.pricing import format_cost
from .candidates import Candidate
from .names import OBJECTIVES
from .report import Row, fmt_s
from .stats import Paired
from .strategies import Outcome

__all__ = ["OBJECTIVES"]


@dataclass
class Option:
    """Something tune can write as an ensemble: one candidate alone, or a confirmed panel with its
    reviewer and synthesizer. `tune` is measured on the tune items, `report` on the held-out ones."""

    label: str
    members: tuple[Candidate, ...]
    reviewer: Candidate | None
    synthesizer: Candidate | None
    outcomes: dict[str, Outcome]  # item id → outcome
    tune: Row | None = None
    report: Row | None = None
    versus_best: Paired | None = None  # held-out, against the best single model
    cost_front: bool = False
    latency_front: bool = False

    @property
    def single(self) -> bool:
        return len(self.members) == 1


def _cost(o: Option) -> float:
    c = o.tune.cost_per_item_usd if o.tune and o.tune.cost_complete else None
    return math.inf if c is None else c


def _latency(o: Option) -> float:
    lat = o.tune.latency_p50_s if o.tune else None
    return math.inf if lat is None else lat


def _acc(o: Option) -> float:
    return o.tune.accuracy if o.tune else 0.0


def _front(options: list[Option], x: Callable[[Option], float]) -> list[Option]:
    """The options no other beats on both accuracy and x (lower x is better); unknown x never competes."""
    known = [o for o in options if x(o) != math.inf]
    return [o for o in known if not any(
        p is not o and x(p) <= x(o) and _acc(p) >= _acc(o) and (x(p) < x(o) or _acc(p) > _acc(o)) for p in known)]


def mark_fronts(options: list[Option]) -> None:
    for o in _front(options, _cost):
        o.cost_front = True
    for o in _front(options, _latency):
        o.latency_front = True


def by_accuracy(options: list[Option]) -> list[Option]:
    """Most accurate first; ties to the cheaper, then the faster, then the smaller."""
    return sorted(options, key=lambda o: (-_acc(o), _cost(o), _latency(o), len(o.members)))


def knee(front: list[Option]) -> Option:
    """Where spending more stops buying much accuracy: the front point farthest above the line from its
    cheapest to its most accurate point (both axes scaled to 0..1); with two points, the more accurate."""
    pts = sorted(front, key=_cost)
    lo_c, hi_c = _cost(pts[0]), _cost(pts[-1])
    lo_a, hi_a = _acc(pts[0]), _acc(pts[-1])
    if len(pts) < 3 or hi_c == lo_c or hi_a == lo_a:
        return by_accuracy(pts)[0]
    return max(pts, key=lambda o: ((_acc(o) - lo_a) / (hi_a - lo_a) - (_cost(o) - lo_c) / (hi_c - lo_c), _acc(o)))


def choose(options: list[Option], objective: str, tolerance: float) -> Option:
    ranked = by_accuracy(options)
    top = ranked[0]
    near = [o for o in ranked if _acc(o) >= _acc(top) - tolerance - 1e-12]
    if objective == "cost":
        return min(near, key=lambda o: (_cost(o), -_acc(o), _latency(o)))
    if objective == "latency":
        return min(near, key=lambda o: (_latency(o), -_acc(o), _cost(o)))
    if objective == "pareto":
        front = [o for o in options if o.cost_front]
        return knee(front) if front else top
    return top


def _pct(row: Row) -> str:
    return f"{row.accuracy:.1%} [{row.ci_low:.0%}–{row.ci_high:.0%}]"


def _ratio(a: float, b: float) -> str:
    return "-" if b in (0, math.inf) or a == math.inf else f"{a / b:.0%}"


def _times(a: float, b: float) -> str:
    return "-" if b in (0, math.inf) or a == math.inf else f"{a / b:.2g}×"


def reasons(chosen: Option, best_single: Option, options: list[Option], objective: str, tolerance: float,
            n_tune: int, n_held: int) -> list[str]:
    """The recommendation's case in plain sentences."""
    top = by_accuracy(options)[0]
    pts = f"{tolerance * 100:g} point{'s' if tolerance != 0.01 else ''}"
    acc = f"{_acc(chosen):.1%} on the {n_tune} tune items"
    if objective == "accuracy":
        ties = [o for o in options if o is not chosen and _acc(o) == _acc(chosen)]
        tied = f" (tied with {len(ties)} other option(s); it is the cheapest)" if ties else ""
        lines = [f"Most accurate: {acc}{tied}."]
    elif objective in ("cost", "latency") and chosen is not top:
        what, mine, theirs = ("cost", _cost(chosen), _cost(top)) if objective == "cost" else \
            ("p50 latency", _latency(chosen), _latency(top))
        lines = [f"The {'cheapest' if objective == 'cost' else 'fastest'} option within {pts} of the most accurate "
                 f"({top.label}, {_acc(top):.1%}): {acc}, at {_ratio(mine, theirs)} of its {what}."]
    elif objective == "pareto":
        lines = [f"The knee of the cost–accuracy front (where more spending stops buying much accuracy): {acc}."]
    else:
        lines = [f"The {'cheapest' if objective == 'cost' else 'fastest'} option is also the most accurate: {acc}."]
    if chosen.tune is not None:
        cost = chosen.tune.cost_per_item_usd
        lines.append(f"It costs {format_cost(cost, chosen.tune.cost_complete)} per item"
                     + ("" if chosen is best_single else f" ({_times(_cost(chosen), _cost(best_single))} that of the "
                        f"best single model, {best_single.label})")
                     + f", p50 latency {fmt_s(chosen.tune.latency_p50_s)}.")
    close = [o for o in options if o is not chosen and chosen.tune is not None and _acc(o) >= chosen.tune.ci_low]
    if close and chosen.tune is not None:
        lines.append(f"The tune items cannot separate it from {len(close)} other option(s): their accuracy lies inside "
                     f"its 95% interval [{chosen.tune.ci_low:.0%}–{chosen.tune.ci_high:.0%}] on {n_tune} items; "
                     "more items would narrow it.")
    if n_held == 0:
        lines.append("There are no held-out items (--holdout 0): these are the numbers the choice was made on, "
                     "so they flatter it.")
        return lines
    if chosen.report is not None and best_single.report is not None:
        lines.append(f"On the {n_held} held-out items (not used to choose): {_pct(chosen.report)}"
                     + ("." if chosen is best_single else f"; the best single model {_pct(best_single.report)}."))
    test = chosen.versus_best
    if chosen is best_single or test is None:
        lines.append("It is the best single model on the tune items; no confirmed panel beat it there.")
    elif test.separated:
        better = "better" if test.a_only > test.b_only else "worse"
        lines.append(f"The held-out items separate it from the best single model: it is {better} (exact McNemar "
                     f"p = {test.p_value:.3g}; right where {best_single.label} was wrong on {test.a_only} items, the "
                     f"reverse on {test.b_only}).")
    else:
        lines.append(f"The held-out items cannot separate it from the best single model (exact McNemar p = "
                     f"{test.p_value:.2g}; right where {best_single.label} was wrong on {test.a_only} items, the "
                     f"reverse on {test.b_only}): the difference may be chance, and more items would tell.")
    return lines
