"""How a run shares its deadline out between drafting, review and synthesis."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

# Drafting may use DRAFT_SHARE of the deadline once the quorum is in, and waits up to QUORUM_SHARE
# for a quorum that is late; the review then gets REVIEW_SHARE of what is left, and the synthesis
# the rest. A stage with less than MIN_STAGE_S left is skipped.
DRAFT_SHARE = 0.55
QUORUM_SHARE = 0.75
REVIEW_SHARE = 0.4
MIN_STAGE_S = 0.5


@dataclass(frozen=True)
class TimePlan:
    started: float  # on anyio's clock
    deadline_s: float

    @classmethod
    def starting_now(cls, deadline_s: float) -> "TimePlan":
        return cls(anyio.current_time(), deadline_s)

    @property
    def deadline_at(self) -> float:
        return self.started + self.deadline_s

    @property
    def drafts_done_at(self) -> float:
        """When drafting stops waiting for the stragglers, once the quorum is in."""
        return self.started + self.deadline_s * DRAFT_SHARE

    @property
    def quorum_at(self) -> float:
        """When drafting stops waiting, quorum or not."""
        return self.started + self.deadline_s * QUORUM_SHARE

    @staticmethod
    def left(until: float) -> float:
        return until - anyio.current_time()

    def review_until(self) -> float | None:
        """The review's end, or None when too little time is left to start one."""
        until = anyio.current_time() + max(0.0, self.left(self.deadline_at)) * REVIEW_SHARE
        return until if self.left(until) >= MIN_STAGE_S else None

    def synthesis_until(self) -> float | None:
        return self.deadline_at if self.left(self.deadline_at) >= MIN_STAGE_S else None
