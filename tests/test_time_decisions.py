"""Every decision of the time plan, on a fake clock: the synthesis's latest start, the quorum's wait,
the grace, the cut, the review's fit or skip, the synthesis's start, and the verdict on each draft
still out (queued behind a rate limit, queued for a busy provider, hung, writing, slow under load).
No real time passes, so the numbers are exact."""

from __future__ import annotations

import anyio
import pytest

from fusion_mcp.clock import REAL_CLOCK, FakeClock, wait_event
from fusion_mcp.config.ensembles import Ensemble, ModelRole, parse_ensemble
from fusion_mcp.errors import ProviderTimeoutError
from fusion_mcp.fusion.paces import Pace, PaceBook
from fusion_mcp.fusion.stragglers import hung, judge, prompt_scale, unless_hung
from fusion_mcp.fusion.timing import Evidence, TimePlan
from fusion_mcp.fusion.watch import CallWatch
from fusion_mcp.providers import Completion


def ensemble(deadline_s: float = 45) -> Ensemble:
    return parse_ensemble("lab", {
        "deadline_s": deadline_s, "min_drafts": 2, "providers": {"fn": {"kind": "function"}},
        "drafters": [{"model": "fn:a"}, {"model": "fn:b"}, {"model": "fn:c"}],
        "reviewer": {"model": "fn:judge"}, "synthesizer": {"model": "fn:fuser"},
    })


def plan(clock: FakeClock, **measured: Pace) -> TimePlan:
    book = PaceBook(priors={})
    for name, pace in measured.items():
        book.store.set_pace(f"fn:{name}", pace)
    return TimePlan(45, ensemble(), book, clock)


def at(p: TimePlan, seconds: float) -> float:
    return p.started + seconds


def role(p: TimePlan, name: str) -> ModelRole:
    ens = p.ensemble
    return next(r for r in (*ens.drafters, ens.reviewer, ens.synthesizer) if r is not None and r.model_id == name)


# -- the synthesis's latest start and the quorum's wait ------------------------------------------------


def test_an_unknown_synthesizer_keeps_a_fixed_share_of_the_deadline() -> None:
    p = plan(FakeClock())
    assert p.synthesis_start_by() == pytest.approx(at(p, 45 - 0.3 * 45))
    assert p.schedule.synthesis_start_by_s == 31.5
    assert p.quorum_wait_until() == pytest.approx(at(p, 45 - 0.3 * 45 * 0.8))


def test_a_known_synthesizer_gets_its_predicted_time_with_a_margin() -> None:
    p = plan(FakeClock(), fuser=Pace(1.0, 100, 1))  # 800 tokens: 1 + 799/100 = 8.99 s
    assert p.synthesis_start_by() == pytest.approx(at(p, 45 - 8.99 * 1.2 - 1.0))
    # the quorum may wait until the synthesis is still predicted to finish, without the margin
    assert p.quorum_wait_until() == pytest.approx(at(p, 45 - 8.99))
    assert p.schedule.predicted_s["synthesis fn:fuser"] == 9.0


def test_a_slow_synthesizer_never_takes_more_than_sixty_percent() -> None:
    p = plan(FakeClock(), fuser=Pace(1.0, 10, 1))  # 80.9 s predicted
    assert p.synthesis_start_by() == pytest.approx(at(p, 45 * 0.4))


# -- the quorum, the grace and the cut -----------------------------------------------------------------


def test_the_grace_is_at_least_two_seconds_or_half_the_time_the_quorum_took() -> None:
    p = plan(FakeClock())
    assert p.grace_until(at(p, 0.4)) == pytest.approx(at(p, 2.4))
    assert p.grace_until(at(p, 10)) == pytest.approx(at(p, 15))


def test_drafting_stops_early_enough_to_leave_the_review_its_time() -> None:
    p = plan(FakeClock(), fuser=Pace(1.0, 100, 1), judge=Pace(0.5, 100, 1))
    # review of 3 drafts with analysis: 60 + 90*3 + 150 + 40*3 = 600 tokens: 6.49 s, 7.788 s with the margin
    latest = p.drafts_window(at(p, 0.4), 3)
    assert latest == pytest.approx(at(p, 45 - 8.99 * 1.2 - 1.0 - 6.49 * 1.2))
    assert p.schedule.quorum_at_s == 0.4
    unknown_judge = plan(FakeClock(), fuser=Pace(1.0, 100, 1))
    assert unknown_judge.drafts_window(at(unknown_judge, 0.4), 3) == pytest.approx(unknown_judge.synthesis_start_by())


def test_the_cut_follows_what_the_drafts_still_out_are_worth() -> None:
    p = plan(FakeClock())
    quorum = at(p, 1.0)
    p.drafts_window(quorum, 3)  # latest: 31.5 s
    grace = at(p, 3.0)
    assert p.straggler_cut(quorum, [None]) == pytest.approx(grace)  # hung or rate-limited: the grace
    assert p.straggler_cut(quorum, [(at(p, 10), at(p, 12))]) == pytest.approx(at(p, 12))  # expected: waited for
    assert p.straggler_cut(quorum, [(at(p, 1.5), at(p, 1.8))]) == pytest.approx(grace)  # never under the grace
    assert p.straggler_cut(quorum, [(at(p, 30), at(p, 32))]) == pytest.approx(grace)  # margin past the latest
    assert p.straggler_cut(quorum, [(at(p, 40), at(p, 48))]) == pytest.approx(quorum)  # all too late: stop now
    assert p.straggler_cut(quorum, [(at(p, 40), at(p, 48)), None]) == pytest.approx(grace)
    assert p.straggler_cut(quorum, [(at(p, 31.5), at(p, 31.5))]) == pytest.approx(at(p, 31.5))  # queued: all of it


# -- the review and the synthesis ----------------------------------------------------------------------


async def test_the_review_runs_when_it_fits_and_is_skipped_with_the_reason_when_not() -> None:
    clock = FakeClock()
    p = plan(clock, fuser=Pace(1.0, 100, 1), judge=Pace(0.5, 100, 1))
    await clock.advance(5)
    until, why = p.review_until(role(p, "judge"), 3)
    assert until == pytest.approx(p.synthesis_start_by()) and "fits" in why
    await clock.advance(25)  # 30 s in: 3.2 s left before the synthesis must start, 7.8 s needed
    until, why = p.review_until(role(p, "judge"), 3)
    assert until is None and why == "predicted 6.5 s, but only 3.2 s are left before the synthesis must start"


async def test_a_reviewer_of_unknown_pace_gets_a_share_of_what_is_left() -> None:
    clock = FakeClock()
    p = plan(clock)
    await clock.advance(5)
    until, why = p.review_until(role(p, "judge"), 3)
    assert until == pytest.approx(at(p, 5 + 0.4 * 40)) and why == "pace of fn:judge unknown: it gets 16.0 s"
    await clock.advance(39.8)
    assert p.review_until(role(p, "judge"), 3) == (None, "no time left in the deadline")


async def test_the_synthesis_starts_while_half_a_second_is_left() -> None:
    clock = FakeClock()
    p = plan(clock)
    await clock.advance(44.4)
    assert p.synthesis_until() == pytest.approx(p.deadline_at)
    await clock.advance(0.2)
    assert p.synthesis_until() is None


# -- what the run observes -----------------------------------------------------------------------------


def test_the_load_is_the_median_slowdown_bounded() -> None:
    assert Evidence().load() == 1.0
    assert Evidence(ratios=[2, 4, 3]).load() == 3.0
    assert Evidence(ratios=[0.5]).load() == 1.0  # faster than measured: predictions are not shrunk
    assert Evidence(ratios=[20]).load() == 8.0


def test_predictions_stretch_with_the_load() -> None:
    p = plan(FakeClock(), fuser=Pace(1.0, 100, 1))
    p.observed(sent_at=at(p, 0), first_byte_at=at(p, 3), done_at=at(p, 9), predicted_s=3.0)
    assert p.evidence.load() == 3.0 and p.evidence.ttfts == [3.0] and p.evidence.durations == [9.0]
    assert p.predict(role(p, "fuser"), "synthesis") == pytest.approx(8.99 * 3)


# -- the verdict on each draft still out ---------------------------------------------------------------


def sent(clock: FakeClock, *, streaming: bool = True) -> CallWatch:
    watch = CallWatch(clock)
    watch.dispatched()
    if streaming:
        watch.begin()
    return watch


async def test_a_draft_queued_behind_a_rate_limit_gets_the_grace_and_one_queued_for_a_busy_provider_waits() -> None:
    clock = FakeClock()
    p = plan(clock)
    p.drafts_window(at(p, 0.5), 3)
    throttled = CallWatch(clock)
    throttled.throttled()
    verdict = judge(p, role(p, "c"), throttled, clock.now())
    assert verdict.kind == "rate_limited" and verdict.holds is None
    busy = CallWatch(clock)
    verdict = judge(p, role(p, "c"), busy, clock.now())
    assert verdict.kind == "queued" and verdict.holds == (p.drafts_latest, p.drafts_latest)
    busy.dispatched()  # it got its slot: judged as a call in flight from now on
    assert judge(p, role(p, "c"), busy, clock.now()).kind != "queued"


async def test_an_unknown_model_is_hung_when_it_shows_no_first_byte_long_after_its_peers() -> None:
    clock = FakeClock()
    p = plan(clock)
    assert judge(p, role(p, "c"), sent(clock), clock.now()).kind == "unknown"  # nothing to go by yet: the grace
    watch = sent(clock)
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 0.3, done_at=clock.now() + 0.3, predicted_s=None)
    await clock.advance(1.9)
    verdict = judge(p, role(p, "c"), watch, clock.now())
    assert verdict.kind == "expected" and verdict.holds == (pytest.approx(watch.sent_at + 0.3),
                                                           pytest.approx(watch.sent_at + 2.0))
    await clock.advance(0.2)  # 2.1 s: past the 2 s floor (three times the peers' 0.3 s is less)
    verdict = judge(p, role(p, "c"), watch, clock.now())
    assert verdict.kind == "hung" and verdict.holds is None
    assert verdict.why == "no first byte 2.1 s after it was sent (expected by 0.3 s): treated as hung"


async def test_a_prior_gives_way_to_what_the_run_observes() -> None:
    clock = FakeClock()
    book = PaceBook(priors={"fn:c": Pace(12.0, 44)})  # a reasoning model's prior, never measured here
    p = TimePlan(45, ensemble(), book, clock)
    watch = sent(clock)
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 0.5, done_at=clock.now() + 0.6, predicted_s=None)
    await clock.advance(2.1)
    assert judge(p, role(p, "c"), watch, clock.now()).kind == "hung"


async def test_a_measured_model_is_hung_at_three_times_its_first_token_time() -> None:
    clock = FakeClock()
    p = plan(clock, c=Pace(1.5, 100, 3))
    watch = sent(clock)
    await clock.advance(4.4)
    assert judge(p, role(p, "c"), watch, clock.now()).kind == "expected"
    await clock.advance(0.2)
    assert judge(p, role(p, "c"), watch, clock.now()).kind == "hung"


async def test_under_load_a_slow_first_byte_is_slow_not_hung() -> None:
    clock = FakeClock()
    p = plan(clock, c=Pace(1.0, 100, 3))
    watch = sent(clock)
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 4, done_at=clock.now() + 12, predicted_s=3.0)  # 4x
    p.draft_tokens.append(100)  # drafts of 100 tokens: 1.99 s at its pace, 7.96 s under the load
    await clock.advance(11)  # 3 x 1.0 s x load 4 = 12 s
    verdict = judge(p, role(p, "c"), watch, clock.now())
    assert verdict.kind == "expected" and verdict.hold == pytest.approx(watch.sent_at + 12)
    await clock.advance(1.1)
    assert judge(p, role(p, "c"), watch, clock.now()).kind == "hung"


async def test_a_draft_that_is_writing_is_predicted_from_its_rate() -> None:
    clock = FakeClock()
    p = plan(clock)
    watch = sent(clock)
    await clock.advance(1)
    watch.write("x" * 40)  # 10 tokens
    await clock.advance(1)
    watch.write("x" * 400)  # 110 tokens in 1 s since the first byte
    verdict = judge(p, role(p, "c"), watch, clock.now())
    assert verdict.kind == "writing" and watch.rate() == pytest.approx(110)
    assert verdict.finish == pytest.approx(clock.now() + (800 - 110) / 110)  # 800: the default draft length
    p.draft_tokens.append(100)  # the drafts in are 100 tokens: this one is past that, a quarter more is left
    assert judge(p, role(p, "c"), watch, clock.now()).finish == pytest.approx(clock.now() + 0.25)


# -- a call given up once hung ------------------------------------------------------------------------


async def test_a_call_that_writes_nothing_is_given_up_once_hung() -> None:
    clock = FakeClock()
    p = plan(clock)
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 0.3, done_at=clock.now() + 0.5, predicted_s=None)
    watch = sent(clock)
    outcome: list[object] = []

    async def never() -> Completion:
        await clock.sleep(1e9)
        raise AssertionError("unreachable")

    async def call() -> None:
        try:
            await unless_hung(p, role(p, "judge"), watch, never)
        except ProviderTimeoutError as exc:
            outcome.append((clock.now() - watch.asked_at, exc.reason))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await clock.run_until(clock.now() + 5)
    # a review reads every draft before its first byte: it is hung after 4 s at least
    assert outcome == [(pytest.approx(4.25), "no first byte 4.2 s after it was sent (expected by 0.3 s): treated as hung")]


async def test_a_review_whose_prompt_is_longer_is_expected_later_to_start() -> None:
    # A review reads every draft before its first byte: a prompt n times a draft's is expected to start
    # sqrt(n) times later than the slowest draft did (at most 4 times), and is hung at three times that.
    clock = FakeClock()
    p = plan(clock)
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 0.3, done_at=clock.now() + 0.5, predicted_s=None)
    watch = sent(clock)
    assert prompt_scale(1800, [200]) == 3.0 and prompt_scale(3200, [200]) == 4.0
    assert prompt_scale(20_000, [200]) == 4.0 and prompt_scale(100, [200]) == 1.0
    assert prompt_scale(1200, []) == 1.0  # nothing to compare with: as a draft
    p.observed(sent_at=clock.now(), first_byte_at=clock.now() + 1.0, done_at=clock.now() + 1.5, predicted_s=None)
    scale = prompt_scale(1800, [200])  # the slowest draft's first byte at 1 s: the review's by 3 s, hung after 9 s
    await clock.advance(8.9)
    assert hung(p, role(p, "judge"), watch, clock.now(), "review", scale) is None  # still reading, not hung
    assert hung(p, role(p, "judge"), watch, clock.now(), "review") is not None  # as long as a draft's: hung
    await clock.advance(0.2)
    assert hung(p, role(p, "judge"), watch, clock.now(), "review", scale) == (
        "no first byte 9.1 s after it was sent (expected by 3.0 s): treated as hung")


async def test_a_call_that_answers_is_returned() -> None:
    clock = FakeClock()
    p = plan(clock)
    watch = sent(clock)

    async def answer() -> Completion:
        await clock.sleep(1.0)
        return Completion(provider="fn", model="judge", text="ok")

    got: list[Completion] = []

    async def call() -> None:
        got.append(await unless_hung(p, role(p, "judge"), watch, answer))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await clock.run_until(clock.now() + 1.5)
    assert [c.text for c in got] == ["ok"]


pytestmark = pytest.mark.anyio


async def test_waiting_for_an_event_ends_at_the_clocks_reading_or_with_the_event() -> None:
    clock = FakeClock()
    late, soon = anyio.Event(), anyio.Event()
    got: list[tuple[str, bool, float]] = []

    async def wait(name: str, event: anyio.Event, until: float) -> None:
        got.append((name, await wait_event(clock, event, until), clock.now() - 1000.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "late", late, clock.now() + 2)
        tg.start_soon(wait, "soon", soon, clock.now() + 2)
        await clock.advance(0.5)
        soon.set()
        await clock.advance(3)
    assert got == [("soon", True, 0.5), ("late", False, 2.0)]
    assert await wait_event(REAL_CLOCK, late, REAL_CLOCK.now() + 0.01) is False
