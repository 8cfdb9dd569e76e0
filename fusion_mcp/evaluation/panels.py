"""Panels from drafts alone: every subset of the candidates scored with no new model call.

A panel's vote (the majority of its members' extracted answers), its oracle ceiling (right when any
member is right), how often its members agree, its summed cost and its predicted latency (the slowest
member on each item) all follow from the drafts each candidate already wrote.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ..errors import ConfigError
from .datasets import Item
from .report import Row, summarize
from .scoring import is_correct
from .strategies import VOTE, Outcome, vote

MAX_PANELS = 50_000


@dataclass
class Drafts:
    """Every candidate's draft outcome on every item: candidate label → item id → outcome."""

    by_candidate: dict[str, dict[str, Outcome]]

    def of(self, label: str, items: list[Item]) -> list[Outcome]:
        return [self.by_candidate[label][item.id] for item in items]


@dataclass
class PanelScore:
    """A panel ranked on the tune items: members in vote order (a tie goes to the first)."""

    members: tuple[str, ...]
    vote: Row  # accuracy, summed cost per item, latency of the slowest member
    oracle: float
    agreement: float | None

    @property
    def label(self) -> str:
        return " + ".join(self.members)


def vote_outcomes(drafts: Drafts, members: tuple[str, ...], items: list[Item]) -> list[Outcome]:
    """The panel's vote on each item, with the summed cost and the slowest member's latency."""
    out = []
    for item in items:
        mine = [drafts.by_candidate[m][item.id] for m in members]
        ok = [o for o in mine if o.failed is None]
        prediction = vote([o.prediction for o in ok])
        known = [o.cost_usd for o in ok if o.cost_usd is not None]
        latencies = [o.latency_s for o in ok if o.latency_s is not None]
        out.append(Outcome(
            prediction=prediction, correct=is_correct(prediction, item), unparseable=bool(ok) and prediction is None,
            failed=None if ok else "every member's draft failed", cost_usd=round(sum(known), 10) if known else None,
            cost_complete=all(o.cost_complete and o.cost_usd is not None for o in ok),
            latency_s=max(latencies) if latencies else None,
        ))
    return out


def oracle(drafts: Drafts, members: tuple[str, ...], items: list[Item]) -> list[bool]:
    return [any(drafts.by_candidate[m][item.id].correct for m in members) for item in items]


def agreement(drafts: Drafts, members: tuple[str, ...], items: list[Item]) -> float | None:
    """How often two members give the same extracted answer, over member pairs and items."""
    agree = total = 0
    for item in items:
        answers = [drafts.by_candidate[m][item.id].prediction for m in members]
        for a, b in itertools.combinations(answers, 2):
            total += 1
            agree += a is not None and a == b
    return agree / total if total else None


def vote_order(labels: list[str], singles: dict[str, Row]) -> list[str]:
    """Strongest single first (accuracy, then cheaper, then the order given): it wins a tied vote."""
    def key(label: str) -> tuple[float, float, int]:
        row = singles[label]
        cost = row.cost_per_item_usd if row.cost_per_item_usd is not None else math.inf
        return (-row.accuracy, cost, labels.index(label))
    return sorted(labels, key=key)


def count_panels(n: int, max_size: int) -> int:
    return sum(math.comb(n, k) for k in range(2, min(max_size, n) + 1))


def score_panels(drafts: Drafts, singles: dict[str, Row], items: list[Item], max_size: int) -> list[PanelScore]:
    """Every panel of 2..max_size candidates on `items`, best first (see `rank_key`)."""
    labels = vote_order(list(singles), singles)
    total = count_panels(len(labels), max_size)
    if total > MAX_PANELS:
        raise ConfigError(f"--panel-size {max_size} with {len(labels)} candidates makes {total} panels; "
                          f"lower --panel-size or drop candidates (at most {MAX_PANELS})")
    scored = []
    for size in range(2, min(max_size, len(labels)) + 1):
        for members in itertools.combinations(labels, size):  # keeps vote order
            scored.append(PanelScore(
                members=members, vote=summarize(" + ".join(members), VOTE, vote_outcomes(drafts, members, items)),
                oracle=sum(oracle(drafts, members, items)) / len(items) if items else 0.0,
                agreement=agreement(drafts, members, items),
            ))
    return sorted(scored, key=rank_key)


def _cost(row: Row) -> float:
    return row.cost_per_item_usd if row.cost_per_item_usd is not None else math.inf


def _latency(row: Row) -> float:
    return row.latency_p50_s if row.latency_p50_s is not None else math.inf


def rank_key(p: PanelScore) -> tuple[float, ...]:
    """Vote accuracy, then the oracle ceiling, then cheaper, then faster."""
    return (-p.vote.accuracy, -p.oracle, _cost(p.vote), _latency(p.vote))


def oracle_key(p: PanelScore) -> tuple[float, ...]:
    """The ceiling a perfect reviewer could reach first: it finds complementary panels a vote cannot
    (two members tie on every disagreement), then the vote, cost and latency."""
    return (-p.oracle, -p.vote.accuracy, _cost(p.vote), _latency(p.vote))


def shortlist(panels: list[PanelScore], k: int) -> list[PanelScore]:
    """The k most promising panels, taken in turn from the vote ranking and the oracle ranking."""
    by_vote, by_oracle = list(panels), sorted(panels, key=oracle_key)
    chosen: list[PanelScore] = []
    for pair in itertools.zip_longest(by_vote, by_oracle):
        for p in pair:
            if len(chosen) < k and p is not None and p not in chosen:
                chosen.append(p)
        if len(chosen) >= k:
            break
    return chosen
