"""The time plan: a run planned backwards from its deadline, around the synthesis.

The synthesis is the product, so it gets its predicted time first: it must start by
`deadline − predicted synthesis × SAFETY − MARGIN_S`. Drafting waits for a quorum until then; once the
quorum is in, the other drafts get a grace period measured from the quorum (and from their own predicted
finish), never past that point, nor past the review's latest start when the review can still fit. The
review runs only if its prediction fits before the synthesis must start. Predictions come from the
pace book (paces.py); a model whose pace is unknown is planned by fixed shares of the deadline instead.
Every decision is recorded, and the result carries it as its `schedule`.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from ..config.ensembles import Ensemble, ModelRole
from .paces import PaceBook
from .result import Schedule

SAFETY = 1.2  # predictions are stretched by this much
MARGIN_S = 1.0
GRACE_MIN_S = 2.0  # network and CPU jitter: a draft a moment late is still worth waiting for
GRACE_RATIO = 0.5  # stragglers get at least half the time the quorum took
UNKNOWN_SYNTHESIS_SHARE = 0.3  # of the deadline, reserved for a synthesizer of unknown pace
MAX_SYNTHESIS_SHARE = 0.6  # drafting always keeps at least 40% of the deadline
UNKNOWN_REVIEW_SHARE = 0.4  # of the time left, for a reviewer of unknown pace
MIN_STAGE_S = 0.5
DEFAULT_DRAFT_TOKENS = 800
DEFAULT_TOOL_LOOP_S = 10.0  # a role with web tools, before its tool time has been measured
REVIEW_TOKENS_BASE, REVIEW_TOKENS_PER_DRAFT = 60, 90
# The analysis across drafts (consensus, contradictions, ...) that a review writes after the scores.
ANALYSIS_TOKENS_BASE, ANALYSIS_TOKENS_PER_DRAFT = 150, 40


class TimePlan:
    def __init__(self, deadline_s: float, ensemble: Ensemble, book: PaceBook) -> None:
        self.started = anyio.current_time()
        self.deadline_s = deadline_s
        self.ensemble = ensemble
        self.book = book
        self.draft_tokens: list[int] = []  # output tokens of this run's drafts, as they come
        self.drafts_latest = self.deadline_at  # past this, no draft is waited for (set with the quorum)
        self.schedule = Schedule(deadline_s=deadline_s)

    # -- clock -------------------------------------------------------------------------------

    @property
    def deadline_at(self) -> float:
        return self.started + self.deadline_s

    def now_s(self) -> float:
        """Seconds since the run started."""
        return round(anyio.current_time() - self.started, 3)

    @staticmethod
    def left(until: float) -> float:
        return until - anyio.current_time()

    def decide(self, decision: str) -> None:
        self.schedule.decisions.append(f"{self.now_s():.1f} s: {decision}")

    # -- predictions -------------------------------------------------------------------------

    def _tokens(self, role: ModelRole, stage: str, default: float) -> float:
        learned = self.book.output_tokens(role.ref, stage)
        tokens = learned if learned is not None else default
        return min(tokens, role.max_tokens) if role.max_tokens else tokens

    def predict(self, role: ModelRole, stage: str, n_drafts: int = 0) -> float | None:
        # a draft still out, or a synthesis, is about as long as the drafts already in
        typical = sum(self.draft_tokens) / len(self.draft_tokens) if self.draft_tokens else DEFAULT_DRAFT_TOKENS
        default = typical
        if stage == "review":
            default = REVIEW_TOKENS_BASE + REVIEW_TOKENS_PER_DRAFT * max(1, n_drafts)
            if self.ensemble.review_analysis:
                default += ANALYSIS_TOKENS_BASE + ANALYSIS_TOKENS_PER_DRAFT * max(1, n_drafts)
        seconds = self.book.predict(role.ref, self._tokens(role, stage, default))
        if seconds is not None and role.tools:  # the turns and tools of a tool loop, learned like paces
            learned = self.book.tool_seconds(role.ref, stage)
            seconds += learned if learned is not None else DEFAULT_TOOL_LOOP_S
        if seconds is not None:
            self.schedule.predicted_s[f"{stage} {role.ref}"] = round(seconds, 1)
        return seconds

    def synthesis_start_by(self) -> float:
        role = self.ensemble.synthesizer
        predicted = self.predict(role, "synthesis") if role else 0.0
        reserve = predicted * SAFETY + MARGIN_S if predicted is not None else self.deadline_s * UNKNOWN_SYNTHESIS_SHARE
        reserve = min(reserve, self.deadline_s * MAX_SYNTHESIS_SHARE)
        start_by = self.deadline_at - reserve
        self.schedule.synthesis_start_by_s = round(start_by - self.started, 1)
        return start_by

    def _review_reserve(self, n_drafts: int) -> float | None:
        role = self.ensemble.reviewer
        if role is None or n_drafts < 2:
            return 0.0
        predicted = self.predict(role, "review", n_drafts)
        return None if predicted is None else predicted * SAFETY

    # -- drafting ----------------------------------------------------------------------------

    def quorum_wait_until(self) -> float:
        """Until when drafting waits for its quorum: the last moment a synthesis is still predicted to
        finish (without the safety margin: one draft leaves nothing to fuse, so a tight synthesis is
        the better bet)."""
        role = self.ensemble.synthesizer
        predicted = self.predict(role, "synthesis") if role else 0.0
        if predicted is None:
            return self.deadline_at - self.deadline_s * UNKNOWN_SYNTHESIS_SHARE * 0.8
        return max(self.synthesis_start_by(), self.deadline_at - min(predicted, self.deadline_s * MAX_SYNTHESIS_SHARE))

    def straggler_cut(self, quorum_at: float, pending: Sequence[tuple[ModelRole, float]], n_ok: int) -> float:
        """When to stop waiting for the drafts still out, the quorum being in at `quorum_at`.
        `pending` holds (role, the time its call started) of each draft still out."""
        start_by = self.synthesis_start_by()
        latest = start_by
        review = self._review_reserve(n_ok + len(pending))
        if review and quorum_at + review <= start_by:
            latest = start_by - review  # keep the review possible: it needs only the quorum
        cut = quorum_at + max(GRACE_MIN_S, GRACE_RATIO * (quorum_at - self.started))
        finishes = [self.predict(role, "draft") for role, _ in pending]
        for (_, began), predicted in zip(pending, finishes, strict=True):
            if predicted is not None and began + predicted * SAFETY <= latest:
                cut = max(cut, began + predicted * SAFETY)
        late = [p is not None and began + p > latest for (_, began), p in zip(pending, finishes, strict=True)]
        if pending and all(late):
            cut = quorum_at  # every straggler is predicted to finish too late: waiting buys nothing
            self.decide("no draft still out is predicted to finish in time: drafting stops at the quorum")
        cut = max(quorum_at, min(cut, latest))
        self.schedule.quorum_at_s = round(quorum_at - self.started, 1)
        self.drafts_latest = max(quorum_at, latest)
        return cut

    # -- review and synthesis ----------------------------------------------------------------

    def review_until(self, role: ModelRole, n_drafts: int) -> tuple[float | None, str]:
        """(when the review must end, or None to skip it; why)."""
        now = anyio.current_time()
        start_by = self.synthesis_start_by()
        predicted = self.predict(role, "review", n_drafts)
        if predicted is None:
            until = min(now + UNKNOWN_REVIEW_SHARE * max(0.0, self.deadline_at - now), max(start_by, now + MIN_STAGE_S))
            if until - now < MIN_STAGE_S:
                return None, "no time left in the deadline"
            return until, f"pace of {role.ref} unknown: it gets {until - now:.1f} s"
        if now + predicted * SAFETY > start_by:
            return None, (f"predicted {predicted:.1f} s, but only {max(0.0, start_by - now):.1f} s are left "
                          "before the synthesis must start")
        return start_by, f"predicted {predicted:.1f} s, fits before the synthesis must start"

    def synthesis_until(self) -> float | None:
        return self.deadline_at if self.left(self.deadline_at) >= MIN_STAGE_S else None
