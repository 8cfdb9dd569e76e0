"""The exact McNemar test: do two answerers differ on the same items, or could chance explain it?

Only the discordant items count (one right, the other wrong). Under "no difference" each of them is a
fair coin, so the two-sided p-value is twice the binomial tail of the smaller count, capped at 1.
Exact (no chi-square approximation), so it stays honest at the small counts a tune produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

ALPHA = 0.05


@dataclass(frozen=True)
class Paired:
    """Two answerers on the same n items: `a_only` items only A got right, `b_only` only B."""

    n: int
    a_only: int
    b_only: int
    p_value: float

    @property
    def separated(self) -> bool:
        """True when the items show a difference chance explains less than 5% of the time."""
        return self.p_value < ALPHA


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts cannot be negative")
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> Paired:
    """The test over per-item correctness of A and B, listed in the same item order."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired lists differ in length: {len(a_correct)} and {len(b_correct)}")
    a_only = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    b_only = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    return Paired(n=len(a_correct), a_only=a_only, b_only=b_only, p_value=mcnemar_exact(a_only, b_only))
