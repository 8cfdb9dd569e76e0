"""Answer extraction and scoring, and the report's statistics (Wilson interval, percentiles, Pareto)."""

from __future__ import annotations

import pytest

from fusion_mcp.evaluation.datasets import Item
from fusion_mcp.evaluation.report import Row, mark_pareto, percentile, wilson
from fusion_mcp.evaluation.scoring import extract, is_correct
from fusion_mcp.evaluation.strategies import vote

NUMBER = Item("n", "What is 12 plus 7?", "19", "number")
CHOICE = Item("c", "Sky colour?", "B", "choice", ("red", "blue", "green"))
TEXT = Item("t", "Capital of France?", "Paris", "text", aliases=("Paris, France",))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("12 + 7 = 19.\nAnswer: 19", "19"),
        ("Answer: 19 apples", "19"),
        ("The answer is $19.00", "19"),
        ("**Final answer:** 1,019", "1019"),
        ("Answer: 3/4", "0.75"),
        ("First 12, then 7 more: 19", "19"),  # no marker: the last number
        ("Answer: 18\nWait, no.\nAnswer: 19", "19"),  # the last marker wins
        ("I cannot say.", None),
        ("", None),
    ],
)
def test_numbers(reply, expected):
    assert extract(reply, NUMBER) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Answer: B", "B"),
        ("It reflects blue light.\nAnswer: (B)", "B"),
        ("B. blue", "B"),
        ("C", "C"),
        ("**Answer:** b)", "B"),
        ("I choose option A.", "A"),
        ("The answer is blue.", "B"),  # the text of exactly one option
        ("A lot of things could be said.", None),  # not a lone letter
        ("red or blue", None),  # two options: no answer
        ("Answer: D", None),  # no option D
    ],
)
def test_choices(reply, expected):
    assert extract(reply, CHOICE) == expected


@pytest.mark.parametrize(
    ("reply", "right"),
    [
        ("Answer: Paris.", True),
        ("Answer: the paris", True),
        ("Some thoughts.\nParis, France", True),  # no marker: the last line; an alias
        ("Answer: Lyon", False),
        ("Answer: Paris is the capital", False),  # exact match, not containment
    ],
)
def test_text_exact_match(reply, right):
    assert is_correct(extract(reply, TEXT), TEXT) is right


def test_unparseable_is_wrong():
    assert is_correct(None, NUMBER) is False
    assert is_correct(extract("no idea", NUMBER), NUMBER) is False


def test_vote_majority_and_ties():
    assert vote(["19", "20", "19"]) == "19"
    assert vote(["20", "19"]) == "20"  # a tie goes to the earliest drafter
    assert vote([None, "19", None]) == "19"
    assert vote([None, None]) is None


def test_wilson_interval():
    low, high = wilson(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0 and percentile([], 50) is None


def _row(strategy: str, cost: float | None, accuracy: float, complete: bool = True) -> Row:
    return Row(target="t", strategy=strategy, n=10, correct=int(accuracy * 10), accuracy=accuracy, ci_low=0,
               ci_high=1, unparseable=0, failed=0, cost_usd=None if cost is None else cost * 10,
               cost_complete=complete, cost_per_item_usd=cost, latency_p50_s=None, latency_p95_s=None)


def test_pareto_front_skips_oracle_and_unknown_cost():
    rows = [_row("cheap", 0.001, 0.6), _row("mid", 0.003, 0.9), _row("dear", 0.008, 0.8),
            _row("oracle", 0.003, 1.0), _row("unknown", None, 1.0), _row("partial", 0.0001, 1.0, complete=False)]
    mark_pareto(rows)
    assert {r.strategy for r in rows if r.pareto} == {"cheap", "mid"}
