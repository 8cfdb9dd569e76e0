"""A whole run on a fake clock, through function providers: the draft round's cut, the review given up
when hung, and the schedule that records each decision with its evidence. Times are exact."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.clock import FakeClock
from fusion_mcp.errors import RateLimitedError
from fusion_mcp.fusion.paces import Pace, PaceBook
from fusion_mcp.fusion.result import FusionResult
from fusion_mcp.providers import ChatRequest, FunctionProvider
from tests.conftest import drafts_in_prompt, review_json, write_registry

pytestmark = pytest.mark.anyio

ENSEMBLE = """
deadline_s = 45
min_drafts = 2
[providers.fn]
kind = "function"
max_retries = {retries}
[[drafters]]
model = "fn:a"
[[drafters]]
model = "fn:b"
[[drafters]]
model = "fn:c"
[reviewer]
model = "fn:judge"
[synthesizer]
model = "fn:fuser"
"""

Script = dict[str, Callable[[FakeClock], Awaitable[str]]]


def after(seconds: float, text: str) -> Callable[[FakeClock], Awaitable[str]]:
    async def answer(clock: FakeClock) -> str:
        await clock.sleep(seconds)
        return text
    return answer


async def never(clock: FakeClock) -> str:
    await clock.sleep(1e9)
    return "too late"


def healthy(**overrides: Callable[[FakeClock], Awaitable[str]]) -> Script:
    script: Script = {"a": after(0.3, "Answer: 1"), "b": after(0.3, "Answer: 2"), "c": after(0.3, "Answer: 3"),
                      "judge": after(0.3, "review"), "fuser": after(0.3, "fused")}
    return {**script, **overrides}


async def fuse(folder: Path, script: Script, book: PaceBook | None = None, retries: int = 0) -> FusionResult:
    clock = FakeClock()

    async def answer(model: str, request: ChatRequest) -> str:
        text = await script[model](clock)
        if text == "review":
            drafts = drafts_in_prompt(request.messages[-1].content)
            return review_json({label: (8, 8, 8) for label in drafts})
        return text

    reg = write_registry(folder, lab=ENSEMBLE.format(retries=retries))
    results: list[FusionResult] = []
    async with FusionEngine(reg, providers={"fn": FunctionProvider("fn", answer)}, clock=clock,
                            paces=book or PaceBook(priors={})) as engine:
        async def run() -> None:
            results.append(await engine.fuse("Q?", ensemble="lab"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while not results:
                await clock.advance(0.05)
    return results[0]


def status(result: FusionResult) -> dict[str, str]:
    return {d.model: d.status for d in result.drafts}


async def test_a_hung_drafter_of_an_unknown_model_costs_the_grace(ensemble_dir: Path) -> None:
    result = await fuse(ensemble_dir, healthy(c=never))
    assert status(result) == {"fn:a": "ok", "fn:b": "ok", "fn:c": "timeout"}
    schedule = result.schedule
    assert schedule.quorum_at_s == 0.3 and schedule.drafts_cut_at_s == pytest.approx(2.3)  # 2 s of grace
    assert any(d.startswith("2.0 s: draft") and "(fn:c): no first byte 2.0 s after it was sent (expected by 0.3 s): "
               "treated as hung" in d for d in schedule.decisions), schedule.decisions
    assert result.answer == "fused" and result.totals.wall_s == pytest.approx(2.9)  # + review + synthesis


async def test_a_slow_drafter_whose_measured_pace_says_so_is_waited_for(ensemble_dir: Path) -> None:
    book = PaceBook(priors={})
    book.store.set_pace("fn:c", Pace(4.0, 100, 3))  # four seconds to its first token, measured
    result = await fuse(ensemble_dir, healthy(c=after(4.5, "Answer: 3")), book)
    assert status(result) == {"fn:a": "ok", "fn:b": "ok", "fn:c": "ok"}
    assert result.schedule.drafts_cut_at_s is None
    # the same drafter, its pace unknown: nothing says it is slow rather than hung
    unknown = await fuse(ensemble_dir, healthy(c=after(4.5, "Answer: 3")))
    assert status(unknown)["fn:c"] == "timeout" and unknown.schedule.drafts_cut_at_s == pytest.approx(2.3)


async def test_under_load_a_drafter_slow_like_its_peers_is_not_cut(ensemble_dir: Path) -> None:
    def book() -> PaceBook:
        paces = PaceBook(priors={})
        for m in "abc":
            paces.store.set_pace(f"fn:{m}", Pace(1.0, 100, 3))
            paces.store.set_output(f"fn:{m}|draft", 2)  # "Answer: N": 1.01 s at their measured pace
        return paces

    # a loaded upstream: the two peers take three times their pace; the third is slower still
    loaded = healthy(a=after(3.0, "Answer: 1"), b=after(3.0, "Answer: 2"), c=after(8.0, "Answer: 3"))
    result = await fuse(ensemble_dir, loaded, book())
    assert status(result)["fn:c"] == "ok"  # hung only after 3 x 1.0 s x load 3
    # unloaded peers: the same 8 s draft is overdue at 3 x its first-token time
    quick = await fuse(ensemble_dir, {**loaded, "a": after(1.0, "Answer: 1"), "b": after(1.0, "Answer: 2")}, book())
    assert status(quick)["fn:c"] == "timeout" and quick.schedule.drafts_cut_at_s == pytest.approx(3.0)


async def test_a_draft_waiting_behind_a_rate_limit_gets_the_grace_not_the_plan(ensemble_dir: Path) -> None:
    calls: list[int] = []

    async def limited(clock: FakeClock) -> str:
        calls.append(1)
        raise RateLimitedError("fn", "c", "429", retry_after=5.0)  # the retry waits 5 s (real time)

    result = await fuse(ensemble_dir, healthy(c=limited), retries=2)
    assert status(result)["fn:c"] == "timeout" and result.schedule.drafts_cut_at_s == pytest.approx(2.3)
    assert any("(fn:c): queued behind a rate limit (429)" in d for d in result.schedule.decisions)


async def test_a_hung_reviewer_is_given_up_and_the_synthesis_goes_on(ensemble_dir: Path) -> None:
    result = await fuse(ensemble_dir, healthy(judge=never))
    assert result.review.status == "timeout" and "treated as hung" in (result.review.error or "")
    assert result.answer_source == "synthesis" and result.answer == "fused"
    # drafts in at 0.3 s, the review hung 4 s (and a check) later, then the synthesis's 0.3 s
    assert result.totals.wall_s == pytest.approx(4.85)
    assert any("review (fn:judge) given up" in d for d in result.schedule.decisions)
