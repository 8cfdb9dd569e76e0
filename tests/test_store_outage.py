"""A shared store that fails, with a real redis-server killed, paused or full under two real replicas:
each keeps answering from its own memory and says so once in its log (no traceback, no internal
address to a client), reconnects when Redis is back, and the replicas agree about every run's fate."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import LAB_KEY, lab_toml, review_json
from tests.services import LoggedReplica, RestartableRedis, stop_process
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
LEASE_S = 3
OUTAGE_LINE = "serving new runs from this replica's memory"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with Upstream() as up:
        up.script("alpha", text="Answer: Paris.")
        up.script("beta", text="Answer: Paris, France.")
        up.script("judge", text=review_json({"A": (9, 9, 9), "B": (8, 8, 8)}))
        up.script("fuser", text="Paris is the capital.")
        folder = tmp_path / "ensembles"
        folder.mkdir()
        (folder / "lab.toml").write_text(lab_toml(up.url, ["alpha", "beta"], deadline_s=30))
        redis = RestartableRedis(tmp_path)
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
               "FUSION_MCP_LEASE_S": str(LEASE_S)}
        replicas = [LoggedReplica(env, redis.url, tmp_path / f"replica-{n}.log") for n in "ab"]
        try:
            yield {"up": up, "redis": redis, "a": replicas[0], "b": replicas[1]}
        finally:
            for replica in replicas:
                stop_process(replica.proc)
            if redis.proc is not None and redis.proc.poll() is None:
                redis.proc.send_signal(signal.SIGCONT)
                stop_process(redis.proc)


async def _settled(client: Client, run_id: str) -> tuple[str, str | None]:
    """(status, error) of a run once it is no longer running, as get_run tells it."""
    for _ in range(60):
        got = await client.call_tool("get_run", {"run_id": run_id, "wait_s": 2})
        if got.is_error:
            return "failed", got.content[0].text
        if got.structured_content["status"] != "running":
            return got.structured_content["status"], got.structured_content.get("error")
    raise AssertionError(f"run {run_id} still running")


async def test_with_redis_killed_every_replica_still_answers_then_reconnects(lab: dict[str, Any]) -> None:
    redis, a, b = lab["redis"], lab["a"], lab["b"]
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        before = await on_a.call_tool("fused_answer", {"question": "Capital of France?"})
        run_id = before.structured_content["run_id"]
        redis.kill()
        for client in (on_a, on_b, on_a, on_b):
            answer = await client.call_tool("fused_answer", {"question": "Capital of France, again?"})
            assert not answer.is_error, answer.content
            status, _ = await _settled(client, answer.structured_content["run_id"])
            assert status == "done"
        lost = await on_b.call_tool("get_run", {"run_id": run_id})
        text = lost.content[0].text
        assert lost.is_error and "cannot be reached" in text and "\n" not in text.strip()
        assert "127.0.0.1" not in text and "Error 111" not in text and str(redis.port) not in text
        for replica in (a, b):
            said = replica.said()
            assert said.count(OUTAGE_LINE) == 1, said
            assert "Traceback" not in said and str(redis.port) not in said

        redis.start()  # empty, on the same port
        with anyio.fail_after(20):
            while not all("the store is back" in r.said() for r in (a, b)):
                await anyio.sleep(0.2)
        shared = await on_a.call_tool("fused_answer", {"question": "Capital of France, once more?"})
        status, _ = await _settled(on_b, shared.structured_content["run_id"])  # read through the other replica
        assert status == "done"


async def test_with_redis_paused_past_a_lease_the_replicas_agree_on_a_run(lab: dict[str, Any]) -> None:
    redis, a, b, up = lab["redis"], lab["a"], lab["b"], lab["up"]
    up.script("alpha", text="Answer: Paris.", delay=4)
    up.script("beta", text="Answer: Paris, France.", delay=4)
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        first = await on_a.call_tool("fused_answer", {"question": "Capital of France, slowly?"})
        assert first.structured_content["status"] == "running"
        run_id = first.structured_content["run_id"]
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)  # Redis stops answering; the run finishes meanwhile
        await anyio.sleep(LEASE_S * 3)
        redis.proc.send_signal(signal.SIGCONT)
        with anyio.fail_after(60):
            seen_b = await _settled(on_b, run_id)
            await anyio.sleep(LEASE_S)  # time for A to write what it missed, or to adopt B's view
            seen_a = await _settled(on_a, run_id)
            seen_b = await _settled(on_b, run_id)
    assert seen_a == seen_b, (seen_a, seen_b)
    for replica in (a, b):
        assert "Traceback" not in replica.said(), replica.said()


async def test_redis_at_maxmemory_costs_no_call_and_names_the_setting(lab: dict[str, Any]) -> None:
    redis, a = lab["redis"], lab["a"]
    assert "OK" in redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert "OK" in redis.cli("CONFIG", "SET", "maxmemory", "1")
    async with Client(a.url) as on_a:
        for n in range(3):
            answer = await on_a.call_tool("fused_answer", {"question": f"Capital of France? ({n})"})
            assert not answer.is_error, answer.content
            status, _ = await _settled(on_a, answer.structured_content["run_id"])
            assert status == "done"
    said = a.said()
    assert said.count("maxmemory") >= 1 and said.count("the store is full") == 1, said
    assert "Traceback" not in said
    assert json.loads(json.dumps(said))  # one readable log, nothing binary


async def test_sigterm_records_a_shared_run_failed_at_once(lab: dict[str, Any]) -> None:
    a, b, up = lab["a"], lab["b"], lab["up"]
    up.script("alpha", text="Answer: Paris.", delay=30)
    up.script("beta", text="Answer: Paris, France.", delay=30)
    async with Client(a.url) as on_a:
        first = await on_a.call_tool("fused_answer", {"question": "Capital of France, before the end?"})
    run_id = first.structured_content["run_id"]
    a.proc.send_signal(signal.SIGTERM)
    signalled = anyio.current_time()
    async with Client(b.url) as on_b:
        status, error = await _settled(on_b, run_id)
    assert status == "failed" and error is not None and "shutting down" in error, (status, error)
    assert anyio.current_time() - signalled < 5.0
    with anyio.fail_after(10):
        while a.proc.poll() is None:
            await anyio.sleep(0.05)
    assert "Traceback" not in a.said()
