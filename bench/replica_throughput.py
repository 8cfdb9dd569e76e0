"""What one replica handles, and what a second one behind haproxy adds, against the loopback upstream.

Starts a real redis-server, `fusion-mcp serve --transport streamable-http` replicas and haproxy (as
tests/test_replicas.py does), then sends `--calls` fused_answer calls (distinct questions: no cache
hits), `--concurrency` at a time, over streamable HTTP, and reports calls per second for:
  1. one replica, embedded store (no Redis);  2. one replica, Redis store;  3. two replicas + haproxy.
Models answer at once, so this measures the server (MCP, engine, store), not the models.

    .venv/bin/python bench/replica_throughput.py [--calls 300] [--concurrency 24] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client

from tests.conftest import LAB_KEY, lab_toml
from tests.services import Service, start_haproxy, start_redis, start_replica
from tests.upstream import Upstream


async def load(url: str, calls: int, concurrency: int, tag: str) -> tuple[float, float]:
    """Calls per second and median latency (ms) of `calls` fused_answer calls through `url`."""
    latencies: list[float] = []
    todo = iter(range(calls))
    clients = max(1, concurrency // 6)

    async def worker(client: Client) -> None:
        for i in todo:
            t0 = time.perf_counter()
            result = await client.call_tool("fused_answer", {"question": f"{tag} question {i}?"})
            assert not result.is_error and result.structured_content["status"] == "done", result.content
            latencies.append(time.perf_counter() - t0)

    async def one_client(n: int) -> None:
        async with Client(url) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(worker, client)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for k in range(clients):
            tg.start_soon(one_client, concurrency // clients + (1 if k < concurrency % clients else 0))
    wall = time.perf_counter() - t0
    return calls / wall, 1000 * statistics.median(latencies)


def measure(name: str, start: Callable[[], list[Service]], url_of: Callable[[list[Service]], str],
            args: argparse.Namespace) -> None:
    services = start()
    try:
        url = url_of(services) + "/mcp"
        anyio.run(load, url, max(4, args.calls // 10), args.concurrency, f"warm {name}")  # warm-up
        rate, median = anyio.run(load, url, args.calls, args.concurrency, name)
        print(f"{name:<34} {rate:7.1f} calls/s   median {median:7.1f} ms", flush=True)
    finally:
        for s in reversed(services):
            s.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="a few calls, to check the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.concurrency = 12, 4
    folder = Path(tempfile.mkdtemp())
    with Upstream() as up:
        for model in ("alpha", "beta", "fuser"):
            up.script(model, text=f"{model} answers.")
        (folder / "lab.toml").write_text(lab_toml(up.url, ["alpha", "beta"], reviewer=None, deadline_s=60,
                                                  provider_extra="max_retries = 0\nmax_concurrency = 16"))
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}
        opts = ("--max-running", "256")
        redis = start_redis(folder)
        store = f"redis://127.0.0.1:{redis.port}/0"
        try:
            print(f"{args.calls} calls, {args.concurrency} at a time; upstream answers at once")
            measure("1 replica, embedded store", lambda: [start_replica(env, "memory", *opts)],
                    lambda s: s[0].url, args)
            measure("1 replica, redis store", lambda: [start_replica(env, store, *opts)], lambda s: s[0].url, args)

            def two() -> list[Service]:
                replicas = [start_replica(env, store, *opts) for _ in range(2)]
                return [*replicas, start_haproxy(folder, replicas)]

            measure("2 replicas + haproxy, redis store", two, lambda s: s[-1].url, args)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
