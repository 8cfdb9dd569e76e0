"""Concurrency that adapts, against the loopback upstream: it grows while the upstream keeps up,
backs off when it rate-limits, never passes its ceiling, and a burst of fused calls over streamable
HTTP all answer at the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from fusion_mcp import FusionEngine
from fusion_mcp.errors import ProviderError
from fusion_mcp.providers.limiter import INITIAL
from tests import test_server_transports
from tests.conftest import lab_toml, write_registry
from tests.test_providers import ASK
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio


async def _burst(upstream: Upstream, folder: Path, n: int, extra: str = "") -> tuple[list[Any], FusionEngine]:
    reg = write_registry(folder, lab=lab_toml(upstream.url, ["m"], None, None, provider_extra=extra))
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
