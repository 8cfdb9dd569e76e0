"""The shared store against a real redis-server: limits, cache, paces and runs as two replicas see them.

Two `RedisStore`s on one Redis play two replicas (each has its own connections, as separate processes
would); tests/test_replicas.py runs real replica processes behind a load balancer.
"""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from fusion_mcp.config.settings import Settings
from fusion_mcp.errors import ConfigError
from fusion_mcp.fusion.completion_cache import cached_completion, store_completion
from fusion_mcp.fusion.paces import PaceBook
from fusion_mcp.fusion.result import FusionResult
from fusion_mcp.providers import Completion
from fusion_mcp.providers.base import Usage
from fusion_mcp.store.redis_store import RedisStore
from fusion_mcp.store.runs import RunHandle, RunRecord, UnknownRunError
from tests.services import free_port, start_redis


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


async def two_replicas(url: str, lease_s: float = 2.0) -> tuple[RedisStore[FusionResult], RedisStore[FusionResult]]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    record = RunRecord[FusionResult]
    return (await RedisStore(url, lease_s, record, prefix).open(),
            await RedisStore(url, lease_s, record, prefix).open())


def test_store_url_is_the_flag_else_the_environment():
    assert Settings.from_env({}).store is None and Settings.from_env({}, store="memory").store is None
    assert Settings.from_env({}, store="redis://h:6379/0").store == "redis://h:6379/0"
    env = {"FUSION_MCP_STORE": "redis://env:6379/1"}
    assert Settings.from_env(env).store == "redis://env:6379/1"
    assert Settings.from_env(env, store="redis://flag:6379/2").sources["store"] == "flag --store"
    with pytest.raises(ConfigError, match=r"--store='postgres://db' is not a store .* use redis://"):
        Settings.from_env({}, store="postgres://db")


def test_serve_refuses_a_store_it_cannot_reach():
    port = free_port()  # nothing listens there
    proc = subprocess.run([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                           "--port", str(free_port()), "--store", f"redis://:secret@127.0.0.1:{port}/0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"cannot reach the store at 127.0.0.1:{port}/0" in proc.stderr
    assert "secret" not in proc.stderr
    sse = subprocess.run([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "sse", "--store",
                          f"redis://127.0.0.1:{port}/0"], capture_output=True, text=True, timeout=60)
    assert sse.returncode == 2 and "--store needs --transport streamable-http" in sse.stderr


@pytest.mark.anyio
async def test_two_replicas_together_never_exceed_a_providers_limit(redis_url):
    a, b = await two_replicas(redis_url)
    limits = [a.limit("lab", 3), b.limit("lab", 3)]
    held = peak = 0

    async def call(i: int) -> None:
        nonlocal held, peak
        async with limits[i % 2].slot():
            held += 1
            peak = max(peak, held)
            await anyio.sleep(0.01)
            held -= 1

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(call, i)
    assert peak == 3  # reached, never passed: each replica alone would have allowed 3 of its own
    assert await a.client.zcard(f"{a.prefix}:limit:lab") == 0  # every slot given back
    await a.aclose()
    await b.aclose()


@pytest.mark.anyio
async def test_a_slot_whose_holder_stops_renewing_comes_back_after_one_lease(redis_url):
    a, b = await two_replicas(redis_url, lease_s=1.0)
    got = anyio.Event()

    async def hold_forever() -> None:  # a replica that took a slot, then froze (no heartbeat)
        async with a.limit("one", 1).slot():
            got.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold_forever)
        await got.wait()
        started = time.monotonic()
        with anyio.fail_after(20):
            async with b.limit("one", 1).slot():
                waited = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert waited >= 0.5  # not before the lease ran out


@pytest.mark.anyio
async def test_a_renewed_slot_is_kept(redis_url):
    a, b = await two_replicas(redis_url, lease_s=1.0)
    got = anyio.Event()

    async def hold() -> None:
        async with a.limit("kept", 1).slot():
            got.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(a.heartbeat)
        tg.start_soon(hold)
        await got.wait()
        with anyio.move_on_after(3.5) as waited:  # three leases and a half
            async with b.limit("kept", 1).slot():
                pass
        tg.cancel_scope.cancel()
    assert waited.cancelled_caught


@pytest.mark.anyio
async def test_one_replicas_completion_is_in_the_others_cache(redis_url):
    a, b = await two_replicas(redis_url)
    done = Completion(provider="lab", model="m", text="Paris.", usage=Usage(input_tokens=5, output_tokens=2),
                      cost_usd=0.001, cached=True)
    await store_completion(a.cache, "k1", done)
    got = await cached_completion(b.cache, "k1")
    assert got is not None and got.text == "Paris." and got.cost_usd == 0.001 and not got.cached
    assert await b.cache.get("k2") is None
    assert (b.cache.hits, b.cache.misses) == (1, 1)


@pytest.mark.anyio
async def test_paces_learned_by_one_replica_plan_the_others_runs(redis_url):
    a, b = await two_replicas(redis_url)
    call = Completion(provider="lab", model="m", text="x" * 40, usage=Usage(output_tokens=40), latency_s=2.0,
                      ttft_s=0.4, output_tokens_per_s=25.0)
    book_a, book_b = PaceBook(priors={}, store=a.paces), PaceBook(priors={}, store=b.paces)
    book_a.observe("lab:m", "draft", call)
    await book_a.save()
    assert book_b.pace("lab:m") is None  # b has not looked yet
    await book_b.save()  # after its next run
    pace = book_b.pace("lab:m")
    assert pace is not None and (pace.ttft_s, pace.tokens_per_s) == (0.4, 25.0)
    assert book_b.output_tokens("lab:m", "draft") == 40


@pytest.mark.anyio
async def test_a_run_whose_replica_stops_renewing_is_reported_failed_after_its_lease(redis_url):
    a, b = await two_replicas(redis_url, lease_s=1.0)
    handle: RunHandle[FusionResult] = RunHandle("run-lapse", "fused_answer", "lab", False, deadline_s=60)
    await a.runs.started(handle)  # and then a goes silent: no heartbeat
    seen = await b.runs.find("run-lapse")
    assert isinstance(seen, RunRecord) and seen.status == "running" and seen.replica == a.replica
    started = time.monotonic()
    record = await b.runs.wait("run-lapse", 30)
    assert record is not None and record.status == "failed"
    assert "lease lapsed" in (record.error or "") and a.replica in (record.error or "")
    assert 0.3 <= time.monotonic() - started < 20
    again = await a.runs.record("run-lapse")  # the verdict is stored, not recomputed per reader
    assert again is not None and again.status == "failed"


@pytest.mark.anyio
async def test_a_replica_waiting_on_a_run_is_woken_when_it_ends(redis_url):
    a, b = await two_replicas(redis_url, lease_s=30.0)
    handle: RunHandle[FusionResult] = RunHandle("run-wake", "compare_drafts", "lab", False, deadline_s=60)
    await a.runs.started(handle)
    ended: list[float] = []

    async def wait() -> None:
        record = await b.runs.wait("run-wake", 60)
        ended.append(time.monotonic())
        assert record is not None and record.status == "failed" and record.error == "every draft failed"

    async with anyio.create_task_group() as tg:
        tg.start_soon(b.runs.listen)  # what a replica runs beside its server
        tg.start_soon(wait)
        await anyio.sleep(0.3)
        finished_at = time.monotonic()
        handle.error = "every draft failed"
        handle.done.set()
        await a.runs.finished(handle)
        with anyio.fail_after(30):
            while not ended:
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert ended and ended[0] - finished_at < 10  # woken, not left to its 60 s
    assert await b.runs.record("nope") is None
    with pytest.raises(UnknownRunError, match="no replica sharing this server's store has it"):
        await b.runs.find("nope")


def test_the_embedded_store_needs_no_redis_client(tmp_path: Path):
    """`serve` without --store never imports the Redis client (it is an optional extra)."""
    code = ("import sys; from fusion_mcp.server.app import create_server; from fusion_mcp.config.settings import Settings; "
            "create_server(); assert Settings.from_env().store is None; assert 'redis' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
