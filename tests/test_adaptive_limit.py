"""Concurrency that adapts: its rules on a fake clock (queueing, slow start, one cut per round trip of
429s, the latency signal, the ceiling and the floor), then against the loopback upstream: it grows while
the upstream keeps up, backs off when it rate-limits, never passes its ceiling, and a burst of fused
calls over streamable HTTP all answer at the defaults."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from fusion_mcp import FusionEngine
from fusion_mcp.clock import FakeClock
from fusion_mcp.errors import ProviderError, RateLimitedError
from fusion_mcp.fusion.test_provider import TestProvider
from fusion_mcp.providers.limiter import INITIAL, AdaptiveLimit
from fusion_mcp.providers.resilience import ResilientProvider
from tests import test_server_transports
from tests.conftest import lab_toml, write_registry
from tests.test_providers import ASK
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio


async def _burst(upstream: Upstream, folder: Path, n: int, extra: str = "",
                 kind: str = "openai") -> tuple[list[Any], FusionEngine]:
    reg = write_registry(folder, lab=lab_toml(upstream.url, ["m"], None, None, provider_extra=extra, kind=kind))
    role = reg.get("lab").drafters[0]
    results: list[Any] = [None] * n
    async with FusionEngine(reg) as engine:

        async def one(i: int) -> None:
            try:
                results[i] = await engine.call(role, ASK, timeout_s=60)
            except ProviderError as exc:
                results[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return results, engine


async def test_the_limit_grows_while_the_upstream_keeps_up(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", delay=0.3)
    results, engine = await _burst(upstream, ensemble_dir, 120)
    assert all(not isinstance(r, ProviderError) for r in results), [r for r in results if isinstance(r, ProviderError)]
    # started at INITIAL, then doubled each round trip: well past the old fixed 4 slots
    assert upstream.max_in_flight >= 2 * INITIAL
    assert upstream.max_in_flight <= 128  # the default ceiling


async def test_the_ceiling_holds(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", delay=0.2)
    results, _ = await _burst(upstream, ensemble_dir, 60, "max_retries = 0\nmax_concurrency = 5")
    assert all(not isinstance(r, ProviderError) for r in results)
    assert upstream.max_in_flight == 5


async def test_it_backs_off_when_the_upstream_rate_limits(upstream: Upstream, ensemble_dir: Path) -> None:
    """The upstream answers 429 above 12 in flight: every call still answers (retrying with the
    default two retries), the limit probes past 12 only now and then, and it used what was admitted."""
    upstream.script("m", delay=0.25, rate_limit_above=12)
    n = 150
    results, _ = await _burst(upstream, ensemble_dir, n, "max_retries = 2")
    failed = [r for r in results if isinstance(r, ProviderError)]
    assert failed == []
    assert upstream.max_in_flight > 4  # more than the old fixed slots: it found room
    assert 0 < upstream.rate_limited <= n // 4  # probed, then backed off rather than hammering


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_streamed_reply_s_headers_let_the_waiting_calls_out_before_its_first_token(
        upstream: Upstream, ensemble_dir: Path, kind: str) -> None:
    """A reasoning model: the upstream answers 200 at once, then thinks 2 s before its first token. Twice
    INITIAL calls at once: the first INITIAL's headers let the rest out, so all go out within moments,
    not a whole answer (2 s) later. Both wire formats."""
    upstream.script("m", text="Paris.", ttft=2.0)
    results, _ = await _burst(upstream, ensemble_dir, 2 * INITIAL, kind=kind)
    assert [r for r in results if isinstance(r, ProviderError)] == []
    arrivals = sorted(r.at for r in upstream.calls("m"))
    assert len(arrivals) == 2 * INITIAL
    assert arrivals[-1] - arrivals[0] < 1.0  # the second half went out at the headers, not at the answers


async def test_it_backs_off_when_answers_slow_down(upstream: Upstream, ensemble_dir: Path) -> None:
    """An upstream with 8 workers queues the rest, so its answers slow down as load rises: every call
    answers, and the limit stops growing well short of the ceiling instead of piling calls on it."""
    upstream.script("m", delay=0.2, workers=8)
    results, _ = await _burst(upstream, ensemble_dir, 200, "max_retries = 0")
    assert [r for r in results if isinstance(r, ProviderError)] == []
    assert upstream.max_in_flight < 64  # without the latency signal it reaches the ceiling, 128


async def test_a_burst_of_fused_calls_over_streamable_http_all_answer(http_server, lab_upstream: Upstream) -> None:
    """The issue's burst: 100 concurrent fused_answer calls at the defaults, upstream answering in
    0.5 s. With 4 fixed slots per provider, 10 of them failed."""
    base = http_server("streamable-http")
    async with Client(base + "/mcp") as client:
        results: list[Any] = [None] * 100

        async def one(i: int) -> None:
            results[i] = await client.call_tool("fused_answer", {"question": f"Capital of France? ({i})",
                                                                 "ensemble": "burst"})

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(one, i)
    errors = [r.content[0].text for r in results if r.is_error]
    assert errors == []
    degraded = [r.structured_content["degraded_reasons"] for r in results if r.structured_content["degraded"]]
    assert degraded == []
    assert lab_upstream.max_in_flight > 4


http_server = test_server_transports.http_server  # the same fixture, over this module's server_env


@pytest.fixture(scope="module")
def lab_upstream() -> Any:
    with Upstream() as up:
        for model in ("a1", "a2", "a3", "fuser"):
            up.script(model, text="Paris.", delay=0.5)
        up.script("judge", text='{"A": {"score": 8}, "B": {"score": 8}, "C": {"score": 8}}', delay=0.5)
        yield up


@pytest.fixture(scope="module")
def server_env(lab_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.conftest import LAB_KEY

    folder = tmp_path_factory.mktemp("ensembles")
    toml = lab_toml(lab_upstream.url, ["a1", "a2", "a3"], "judge", "fuser", deadline_s=45, provider_extra="")
    (folder / "burst.toml").write_text(toml)
    return {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "burst",
            "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}


# -- the limit's rules, on a fake clock (no upstream) ---------------------------------------------------


async def _hold(limit: AdaptiveLimit, clock: FakeClock, seconds: float, *, fail: bool = False,
                answered: list[str] | None = None) -> None:
    try:
        async with limit.slot("m") as use:
            await clock.sleep(seconds)
            if fail:
                raise RateLimitedError("lab", "m", "429")
            use.latency_s = seconds
    except RateLimitedError:
        pass
    if answered is not None:
        answered.append("done")


async def test_slots_beyond_the_limit_queue_first_come_first_served() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=10, initial=2, clock=clock)
    order: list[int] = []

    async def one(i: int) -> None:
        async with limit.slot("m") as use:
            order.append(i)
            await clock.sleep(1.0)
            use.latency_s = 1.0

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
        await clock.settle()
        assert limit.in_flight == 2 and limit.waiting == 3 and order == [0, 1]
        await clock.run_until(clock.now() + 5)
    assert order == [0, 1, 2, 3, 4] and limit.peak <= 4


async def test_in_slow_start_each_busy_answer_adds_a_slot_up_to_the_ceiling() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=6, initial=2, clock=clock)
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(_hold, limit, clock, 1.0)
        await clock.advance(1.0)  # two answered while others waited: 2 -> 4
        assert limit.current == 4
        await clock.run_until(clock.now() + 10)
    assert limit.current == 6 and limit.peak == 6  # never past the ceiling


async def test_in_slow_start_a_first_token_adds_the_slot_that_its_answer_would_add_later() -> None:
    """A model writes for seconds after its first token. Grown only by answers, the limit would double
    once per whole answer (tens of seconds at real pace): a first burst of calls would wait minutes.
    Grown at the first token, the waiting calls go out then; the answer adds no second step."""
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=64, initial=2, clock=clock)
    started: list[float] = []
    t0 = clock.now()

    async def streamed() -> None:
        async with limit.slot("m") as use:
            started.append(clock.now() - t0)
            await clock.sleep(0.5)
            use.admitted()  # the first token
            use.admitted()  # later tokens change nothing
            await clock.sleep(9.5)
            use.latency_s = 10.0

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(streamed)
        await clock.advance(0.5)  # two first tokens: 2 -> 4, and two more calls go out now
        assert limit.current == 4 and limit.in_flight == 4
        await clock.advance(0.5)  # their first tokens: 4 -> 6; the last two go out
        assert limit.current == 6 and limit.in_flight == 6
        await clock.run_until(clock.now() + 20)
    assert started == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]  # not 10.0 and 20.0: one round trip is a first token
    assert limit.current == 8  # the last two first tokens: 6 -> 8; the six answers added nothing more


async def test_a_provider_streaming_its_answers_lets_the_waiting_calls_out_at_the_first_tokens() -> None:
    """The same, through the provider wrapper the engine uses: twice INITIAL streamed calls at once, each
    writing its first word after 0.1 s and its answer over 0.6 s. The first INITIAL go out, their first
    words let the rest go out, so every call has started before any has answered; grown only by answers,
    the second half would start as the first half ends."""
    model = TestProvider("t").script("m", text="one two three four five six", words_per_s=10)
    provider = ResilientProvider(model, max_retries=0, max_concurrency=256, timeout_s=30)
    started_when_first_answered: list[int] = []

    async def one() -> None:
        await provider.complete("m", ASK, timeout_s=30)
        started_when_first_answered.append(len(model.calls))

    async with anyio.create_task_group() as tg:
        for _ in range(2 * INITIAL):
            tg.start_soon(one)
    assert started_when_first_answered[0] == 2 * INITIAL
    assert provider.limit("m").current == 3 * INITIAL  # a step at each call's first token, none at its answer


async def test_in_slow_start_a_burst_leaves_room_for_the_next_as_large() -> None:
    """Grown only while calls waited, the limit would end a burst of 40 at 32, and every later burst as
    large would pay a second round for the 8 over it. In slow start it grows up to twice the most calls
    it has seen in flight, so the second burst runs in one round."""
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=256, initial=16, clock=clock)
    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(_hold, limit, clock, 1.0)
        await clock.run_until(clock.now() + 5)
    assert limit.current >= 40
    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(_hold, limit, clock, 1.0)
        await clock.settle()
        assert limit.in_flight == 40 and limit.waiting == 0
        await clock.run_until(clock.now() + 5)
    assert limit.current <= 2 * limit.peak  # no further than twice what it has seen


async def test_a_burst_of_429s_is_one_cut_per_round_trip_and_marks_the_model_rate_limiting() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=64, initial=16, clock=clock)
    assert not limit.rate_limiting()
    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(functools.partial(_hold, limit, clock, 0.1, fail=True))
        await clock.advance(0.1)
    assert limit.current == 8 and limit.cuts == 1 and not limit.slow_start  # one signal, halved once
    assert limit.rate_limiting()
    await clock.advance(1.5)  # past a round trip (1 s before any answer): a new 429 cuts again
    await _hold(limit, clock, 0.0, fail=True)
    assert limit.current == 4 and limit.cuts == 2
    await clock.advance(30.1)
    assert not limit.rate_limiting()  # 30 s without a 429
    for _ in range(5):
        await _hold(limit, clock, 0.0, fail=True)
        await clock.advance(2)
    assert limit.current == 1  # never under one


async def test_answers_slowing_to_twice_their_best_cut_the_limit() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=64, initial=8, clock=clock)
    for seconds in [0.5] * 4 + [3.0] * 6:  # the moving average passes 2 x 0.5 s after a few slow ones
        async with anyio.create_task_group() as tg:
            tg.start_soon(_hold, limit, clock, seconds)
            await clock.advance(seconds)
        if seconds == 0.5:
            assert limit.cuts == 0
    assert limit.cuts >= 1 and limit.current <= 4


async def test_a_waiter_cancelled_when_its_slot_came_passes_it_on() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(ceiling=1, initial=1, clock=clock)
    got: list[str] = []

    async def second() -> None:
        async with limit.slot("m"):
            got.append("second")

    async with anyio.create_task_group() as tg:
        tg.start_soon(_hold, limit, clock, 1.0)
        await clock.settle()
        with anyio.CancelScope() as scope:
            tg.start_soon(second)
            await clock.settle()
        scope.cancel()
        await clock.run_until(clock.now() + 2)
    assert got == ["second"] and limit.in_flight == 0
