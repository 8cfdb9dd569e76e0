"""Eval's budget gate: whether the next job may start under the spending cap.

A job starts only if what was spent plus the expected cost of the jobs in flight and of this one stays
within the cap, the expectation being the mean spend of that target's finished jobs; a target's first
job waits until nothing else is in flight, so its cost is known before more are started. Plain state
and no clock: every decision is a unit test (tests/test_eval_run.py).
"""

from __future__ import annotations

from enum import Enum


class Gate(Enum):
    START = "start"
    WAIT = "wait"  # for a job in flight to finish: its cost says what the next one will cost
    STOP = "stop"  # the cap would be passed


class BudgetGate:
    def __init__(self, cap_usd: float | None, targets: list[str]) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self.in_flight: dict[str, int] = dict.fromkeys(targets, 0)
        self.costs: dict[str, list[float]] = {t: [] for t in targets}

    def expected(self, target: str) -> float | None:
        """The mean spend of the target's finished jobs (None before the first)."""
        done = self.costs[target]
        return sum(done) / len(done) if done else None

    def verdict(self, target: str) -> Gate:
        if self.cap_usd is None:
            return Gate.START
        if self.spent_usd >= self.cap_usd:
            return Gate.STOP
        mine = self.expected(target)
        if mine is None:
            return Gate.START if sum(self.in_flight.values()) == 0 else Gate.WAIT
        flying = sum(n * (self.expected(name) or 0.0) for name, n in self.in_flight.items())
        return Gate.START if self.spent_usd + flying + mine <= self.cap_usd else Gate.STOP

    def started(self, target: str) -> None:
        self.in_flight[target] += 1

    def finished(self, target: str, spent_usd: float | None) -> None:
        """A job is over; `spent_usd` None: it failed before any record (nothing learned of its cost)."""
        self.in_flight[target] -= 1
        if spent_usd is not None:
            self.costs[target].append(spent_usd)
            self.spent_usd += spent_usd
