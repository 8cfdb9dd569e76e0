"""The exact McNemar test and the sample size behind eval's verdict, against values worked by hand."""

from __future__ import annotations

import math

import pytest

from fusion_mcp.evaluation.stats import items_needed, mcnemar_exact


@pytest.mark.parametrize(("b", "c", "p"), [
    (0, 0, 1.0),  # no discordant item: nothing to tell apart
    (3, 0, 0.25),  # 2 * (1/2)^3
    (0, 3, 0.25),  # symmetric
    (10, 0, 2 / 1024),
    (6, 1, 2 * (1 + 7) / 128),  # 2 * P(X <= 1), X ~ Bin(7, 1/2)
    (5, 5, 1.0),  # capped at 1
    (3, 2, 1.0),
])
def test_mcnemar_exact_matches_the_binomial_tail(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, abs=1e-12)


def test_mcnemar_is_significant_only_with_enough_one_sided_disagreement() -> None:
    assert mcnemar_exact(5, 0) > 0.05  # 0.0625: five wins in a row are not yet enough
    assert mcnemar_exact(6, 0) < 0.05  # 0.03125
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_items_needed_follows_connors_formula() -> None:
    # 10 items, 3 + 2 discordant: discordant rate 0.5, difference 0.1.
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    expected = math.ceil((z_a * math.sqrt(0.5) + z_b * math.sqrt(0.5 - 0.01)) ** 2 / 0.01)
    assert items_needed(3, 2, 10) == expected == 391
    assert items_needed(2, 2, 10) is None  # no difference observed
    assert items_needed(30, 0, 100) < items_needed(3, 0, 100)  # a bigger gap needs fewer items
