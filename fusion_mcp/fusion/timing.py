"""The time plan: a run planned backwards from its deadline, around the synthesis.

The synthesis is the product, so it gets its predicted time first: it must start by
`deadline − predicted synthesis × SAFETY − MARGIN_S`. Drafting waits for a quorum until then; once the
quorum is in, the other drafts get a grace period measured from the quorum (and from their own predicted
finish), never past that point, nor past the review's latest start when the review can still fit. The
review runs only if its prediction fits before the synthesis must start. Predictions come from the
pace book (paces.py); a model whose pace is unknown is planned by fixed shares of the deadline instead.
Every decision is recorded, and the result carries it as its `schedule`. Once the quorum is in, the
drafts still out are judged by what they show (stragglers.py); what the run observes of its own drafts
(`Evidence`) scales every prediction, so a loaded upstream reads as slow, not hung. The plan reads
the time from a `Clock` (clock.py): its decisions are tested with a fake one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ..clock import REAL_CLOCK, Clock
from ..config.ensembles import Ensemble, ModelRole
from .paces import Pace, PaceBook
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
MAX_LOAD = 8.0  # predictions stretch at most this much with the load the run observes


@dataclass
class Evidence:
    """What this run's own calls showed: time to first byte and duration from being sent (seconds),
    and observed ÷ predicted duration of those whose pace was measured."""

    ttfts: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    def load(self) -> float:
        """How much slower than their measured pace calls are right now (1: as measured)."""
        return min(MAX_LOAD, max(1.0, statistics.median(self.ratios))) if self.ratios else 1.0


class TimePlan:
    def __init__(self, deadline_s: float, ensemble: Ensemble, book: PaceBook, clock: Clock = REAL_CLOCK) -> None:
        self.clock = clock
        self.started = clock.now()
        self.deadline_s = deadline_s
        self.ensemble = ensemble
        self.book = book
        self.draft_tokens: list[int] = []  # output tokens of this run's drafts, as they come
        self.evidence = Evidence()
        self.drafts_latest = self.deadline_at  # past this, no draft is waited for (set with the quorum)
        self.schedule = Schedule(deadline_s=deadline_s)

    # -- clock -------------------------------------------------------------------------------

    @property
    def deadline_at(self) -> float:
        return self.started + self.deadline_s

    def now(self) -> float:
        return self.clock.now()

    def now_s(self) -> float:
        """Seconds since the run started."""
        return round(self.clock.now() - self.started, 3)

    def left(self, until: float) -> float:
        return until - self.clock.now()

    def decide(self, decision: str) -> None:
        self.schedule.decisions.append(f"{self.now_s():.1f} s: {decision}")

    # -- predictions -------------------------------------------------------------------------

    def _tokens(self, role: ModelRole, stage: str, default: float) -> float:
        learned = self.book.output_tokens(role.ref, stage)
        tokens = learned if learned is not None else default
        return min(tokens, role.max_tokens) if role.max_tokens else tokens

    def expected_tokens(self, role: ModelRole, stage: str, n_drafts: int = 0) -> float:
        # a draft still out, or a synthesis, is about as long as the drafts already in
        typical = sum(self.draft_tokens) / len(self.draft_tokens) if self.draft_tokens else DEFAULT_DRAFT_TOKENS
        default = typical
        if stage == "review":
            default = REVIEW_TOKENS_BASE + REVIEW_TOKENS_PER_DRAFT * max(1, n_drafts)
            if self.ensemble.review_analysis:
                default += ANALYSIS_TOKENS_BASE + ANALYSIS_TOKENS_PER_DRAFT * max(1, n_drafts)
        return self._tokens(role, stage, default)

    def predict(self, role: ModelRole, stage: str, n_drafts: int = 0) -> float | None:
        """Seconds for the role's call at its pace (measured or prior), stretched by the load the run
        observes; None when its pace is unknown."""
        seconds = self.book.predict(role.ref, self.expected_tokens(role, stage, n_drafts))
        if seconds is None:
            return None
        if role.tools:  # the turns and tools of a tool loop, learned like paces
            learned = self.book.tool_seconds(role.ref, stage)
            seconds += learned if learned is not None else DEFAULT_TOOL_LOOP_S
        seconds *= self.evidence.load()
        self.schedule.predicted_s[f"{stage} {role.ref}"] = round(seconds, 1)
        return seconds

    def pace(self, role: ModelRole) -> Pace | None:
        return self.book.pace(role.ref)

    def observed(self, sent_at: float, first_byte_at: float | None, done_at: float,
                 predicted_s: float | None) -> None:
        """Learn from one of the run's calls that came back: `predicted_s` is what its measured pace
        predicted when it was sent (None when it had none)."""
        duration = max(0.0, done_at - sent_at)
        self.evidence.durations.append(duration)
        if first_byte_at is not None:
            self.evidence.ttfts.append(max(0.0, first_byte_at - sent_at))
        if predicted_s:
            self.evidence.ratios.append(duration / predicted_s)

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

    def drafts_window(self, quorum_at: float, n_drafts: int) -> float:
        """The quorum is in at `quorum_at`: past the returned time no draft is waited for (the
        synthesis's latest start, or the review's while a review can still fit)."""
        start_by = self.synthesis_start_by()
        latest = start_by
        review = self._review_reserve(n_drafts)
        if review and quorum_at + review <= start_by:
            latest = start_by - review  # keep the review possible: it needs only the quorum
        self.schedule.quorum_at_s = round(quorum_at - self.started, 1)
        self.drafts_latest = max(quorum_at, latest)
        return self.drafts_latest

    def grace_until(self, quorum_at: float) -> float:
        """Every draft still out is waited for at least this long after the quorum."""
        return quorum_at + max(GRACE_MIN_S, GRACE_RATIO * (quorum_at - self.started))

    def straggler_cut(self, quorum_at: float, holds: list[tuple[float, float] | None]) -> float:
        """When to stop waiting for the drafts still out. `holds` has one entry per draft still out:
        (its expected finish, how long it is worth waiting for it: the finish with the safety
        margin), or None when only the grace is worth giving it (hung, queued behind a rate limit, or
        nothing known). stragglers.py builds them from each draft's evidence."""
        latest = self.drafts_latest
        cut = self.grace_until(quorum_at)
        for hold in holds:
            if hold is not None and hold[1] <= latest:
                cut = max(cut, hold[1])
        if holds and all(h is not None and h[0] > latest for h in holds):
            cut = quorum_at  # every straggler is expected to finish too late: waiting buys nothing
        return max(quorum_at, min(cut, latest))

    # -- review and synthesis ----------------------------------------------------------------

    def review_until(self, role: ModelRole, n_drafts: int) -> tuple[float | None, str]:
        """(when the review must end, or None to skip it; why)."""
        now = self.clock.now()
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
