"""Paired significance for accuracies measured on the same items: the exact McNemar test and the
number of items a difference would need. Standard library only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_TWO_SIDED_05 = 1.959963984540054  # α = 0.05, two-sided
Z_POWER_80 = 0.8416212335729143  # β = 0.2


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: `b` items only the first got
    right, `c` items only the second got right. Under no difference each discordant item is a fair
    coin, so p = 2 · P(Binomial(b + c, 1/2) ≤ min(b, c)), capped at 1. No discordant item: p = 1."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts cannot be negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def items_needed(b: int, c: int, n: int, alpha_z: float = Z_TWO_SIDED_05, power_z: float = Z_POWER_80) -> int | None:
    """Items a paired comparison needs to detect the observed difference (α 0.05, power 0.8), by
    Connor's (1987) sample size for McNemar's test, with the discordant rate and difference taken
    from this run. None when no difference was observed (no n would show one)."""
    if n <= 0 or b == c:
        return None
    discordant = (b + c) / n
    delta = abs(b - c) / n
    root = alpha_z * math.sqrt(discordant) + power_z * math.sqrt(max(0.0, discordant - delta * delta))
    return math.ceil(root * root / (delta * delta))


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


def paired(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> Paired:
    """The exact McNemar test over per-item correctness of A and B, listed in the same item order."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired lists differ in length: {len(a_correct)} and {len(b_correct)}")
    a_only = sum(1 for a, b in zip(a_correct, b_correct, strict=False) if a and not b)
    b_only = sum(1 for a, b in zip(a_correct, b_correct, strict=False) if b and not a)
    return Paired(n=len(a_correct), a_only=a_only, b_only=b_only, p_value=mcnemar_exact(a_only, b_only))
