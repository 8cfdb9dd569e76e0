"""What the MCP layer adds around a fusion run, and how long a host waits for the server to start.

Against the loopback upstream used by the tests (scripted models answer at once), so the engine's
wall time is small and the difference to the tool call's round trip is the MCP layer's cost:
  1. stdio: spawn `fusion-mcp serve` + initialize, tools/list, then N fused_answer calls;
  2. in memory, in both protocol eras (legacy handshake and the current protocol).

    .venv/bin/python bench/server_overhead.py [--calls 20] [--spawns 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client, StdioServerParameters

from fusion_mcp.server.app import create_server
from tests.conftest import LAB_KEY, lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream


async def calls(client: Client, n: int, args: dict[str, str]) -> tuple[float, float]:
    """Median round trip and median engine wall time of n fused_answer calls, in ms."""
    trips, walls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await client.call_tool("fused_answer", args)
        trips.append(time.perf_counter() - t0)
        walls.append(result.structured_content["usage"]["wall_s"])
    return 1000 * statistics.median(trips), 1000 * statistics.median(walls)


async def bench(args: argparse.Namespace) -> None:
    os.environ["LAB_KEY"] = LAB_KEY
    with Upstream() as up:
        up.script("alpha", text="Paris is the capital of France.")
        up.script("beta", text="It is Lyon.")
        up.script("judge", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
        up.script("fuser", text="Paris.")
        folder = Path(tempfile.mkdtemp())
        registry = write_registry(folder, lab=lab_toml(up.url, ["alpha", "beta"]))
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab"}
        question = {"question": "Capital of France?", "ensemble": "lab"}

        for i in range(args.spawns):
            params = StdioServerParameters(command=sys.executable, args=["-m", "fusion_mcp", "serve"], env=env)
            t0 = time.perf_counter()
            async with Client(params, mode="legacy") as client:
                started = time.perf_counter() - t0
                t1 = time.perf_counter()
                await client.list_tools()
                listed = time.perf_counter() - t1
                trip, wall = await calls(client, args.calls, question)
            print(f"stdio #{i + 1}: spawn + initialize {started:.2f} s · tools/list {1000 * listed:.1f} ms · "
                  f"fused_answer median {trip:.1f} ms (engine {wall:.1f} ms, MCP + stdio {trip - wall:.1f} ms)")

        server = create_server(registry)
        for mode in ("legacy", "auto"):
            async with Client(server, mode=mode) as client:
                trip, wall = await calls(client, args.calls, question)
                print(f"in memory, {mode} ({client.protocol_version}): fused_answer median {trip:.1f} ms "
                      f"(engine {wall:.1f} ms, MCP {trip - wall:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--spawns", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few calls, to check the benchmark still runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.spawns = 3, 1
    anyio.run(bench, args)


if __name__ == "__main__":
    main()
