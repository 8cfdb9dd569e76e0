"""The fault suite's store rows (bench/faults.py): two replicas on one redis-server, which is killed,
paused past a lease, or filled to `maxmemory`. `named` is the row's own check (beside each row)."""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _faults_hardening import Fields
from mcp import Client

from tests.services import LoggedReplica, RestartableRedis, stop_process
from tests.upstream import Upstream

LEASE_S = 3
OUTAGE_LINE = "serving new runs from this replica's memory"


async def _settled(client: Client, run_id: str) -> tuple[str, str | None]:
    for _ in range(60):
        got = await client.call_tool("get_run", {"run_id": run_id, "wait_s": 2})
        if got.is_error:
            return "failed", got.content[0].text  # type: ignore[union-attr]
        if got.structured_content["status"] != "running":
            return got.structured_content["status"], got.structured_content.get("error")
    return "running", None


async def _answered(client: Client, question: str) -> tuple[bool, str]:
    """Whether a fused_answer came back done (through get_run when it answered `running`), and its text."""
    first = await client.call_tool("fused_answer", {"question": question, "ensemble": "burst"})
    if first.is_error:
        return False, first.content[0].text  # type: ignore[union-attr]
    status, error = await _settled(client, first.structured_content["run_id"])
    return status == "done", error or ""


async def store_rows(up: Upstream, env: dict[str, str]) -> list[Fields]:
    folder = Path(tempfile.mkdtemp())
    for m in ("d1", "d2", "d3"):
        up.script(m, text="Paris.")
    redis = RestartableRedis(folder)
    store_env = {k: v for k, v in env.items() if k.startswith(("LAB_", "FUSION_MCP_ENSEMBLES", "PYTHON"))}
    store_env["FUSION_MCP_LEASE_S"] = str(LEASE_S)
    a = LoggedReplica(store_env, redis.url, folder / "a.log")
    b = LoggedReplica(store_env, redis.url, folder / "b.log")
    rows: list[Fields] = []
    try:
        async with Client(a.url) as on_a, Client(b.url) as on_b:
            rows.append(await _killed(redis, a, b, on_a, on_b))
            rows.append(await _paused(up, redis, a, b, on_a, on_b))
            rows.append(await _full(redis, a, on_a))
    finally:
        for replica in (a, b):
            stop_process(replica.proc)
        if redis.proc is not None and redis.proc.poll() is None:
            redis.proc.send_signal(signal.SIGCONT)
            stop_process(redis.proc)
    return rows


def _tracebacks(*replicas: Any) -> int:
    return sum(r.said().count("Traceback") for r in replicas)


async def _killed(redis: RestartableRedis, a: Any, b: Any, on_a: Client, on_b: Client) -> Fields:
    """Redis killed: both replicas answer new calls, a run only the store knew is a one-line error
    with no address, each replica says so once, and both reconnect once Redis is back."""
    t0 = time.perf_counter()
    before = await on_a.call_tool("fused_answer", {"question": "Capital? (before the outage)", "ensemble": "burst"})
    redis.kill()
    answered = [await _answered(c, f"Capital? (store killed, {n})") for n, c in enumerate((on_a, on_b, on_a, on_b))]
    lost = await on_b.call_tool("get_run", {"run_id": before.structured_content["run_id"]})
    text = lost.content[0].text  # type: ignore[union-attr]
    clean_error = lost.is_error and "\n" not in text.strip() and str(redis.port) not in text
    once = all(r.said().count(OUTAGE_LINE) == 1 for r in (a, b))
    redis.start()
    with anyio.move_on_after(20):
        while not all("the store is back" in r.said() for r in (a, b)):
            await anyio.sleep(0.2)
    shared = await on_a.call_tool("fused_answer", {"question": "Capital? (after the outage)", "ensemble": "burst"})
    status, _ = await _settled(on_b, shared.structured_content["run_id"])
    held = all(ok for ok, _ in answered) and clean_error and once and status == "done"
    return ("store killed, restarted", "store", "server", time.perf_counter() - t0 < 60, held,
            "ok" if all(ok for ok, _ in answered) else "tool error", _tracebacks(a, b), False)


async def _paused(up: Upstream, redis: RestartableRedis, a: Any, b: Any, on_a: Client, on_b: Client) -> Fields:
    """Redis paused past three leases while a run finishes: both replicas then tell the same fate."""
    for m in ("d1", "d2", "d3"):
        up.script(m, text="Paris.", delay=4)
    t0 = time.perf_counter()
    first = await on_a.call_tool("fused_answer", {"question": "Capital? (store paused)", "ensemble": "burst"})
    run_id = first.structured_content["run_id"]
    assert redis.proc is not None
    redis.proc.send_signal(signal.SIGSTOP)
    await anyio.sleep(LEASE_S * 3)
    redis.proc.send_signal(signal.SIGCONT)
    await _settled(on_b, run_id)
    await anyio.sleep(LEASE_S)
    seen_a, seen_b = await _settled(on_a, run_id), await _settled(on_b, run_id)
    for m in ("d1", "d2", "d3"):
        up.script(m, text="Paris.")
    # Either fate is right (done, or lost with its lease): what must hold is that both replicas tell it.
    return ("store paused 3 leases", "store", "server", time.perf_counter() - t0 < 60, seen_a == seen_b,
            "ok", _tracebacks(a, b), False)


async def _full(redis: RestartableRedis, a: Any, on_a: Client) -> Fields:
    """Redis at maxmemory: calls still answer, and the log names the setting once."""
    redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    redis.cli("CONFIG", "SET", "maxmemory", "1")
    t0 = time.perf_counter()
    try:
        answered = [await _answered(on_a, f"Capital? (store full, {n})") for n in range(3)]
    finally:
        redis.cli("CONFIG", "SET", "maxmemory", "0")
    said = a.said()
    held = all(ok for ok, _ in answered) and said.count("the store is full") == 1 and "maxmemory" in said
    return ("store at maxmemory", "store", "server", time.perf_counter() - t0 < 30, held,
            "ok" if all(ok for ok, _ in answered) else "tool error", _tracebacks(a), False)
