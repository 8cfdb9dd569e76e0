"""How much time the engine adds around the model calls, and how parallel drafting is.

Runs fusion against the loopback upstream used by the tests (real HTTP on 127.0.0.1):
  1. overhead: scripted models answer at once; wall time per run is the engine's own cost
     (prompt building, HTTP round trips, review parsing, weighting);
  2. parallelism: N drafters that each take D seconds; drafting wall time / D should be ≈ 1.

    .venv/bin/python bench/engine_overhead.py [--runs 30] [--drafters 4] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from tests.conftest import lab_toml, review_json
from tests.upstream import Upstream


async def bench(args: argparse.Namespace) -> None:
    import os

    os.environ.setdefault("LAB_KEY", "bench-key")
    names = [f"m{i}" for i in range(args.drafters)]
    labels = [chr(65 + i) for i in range(args.drafters)]
    with Upstream() as up, tempfile.TemporaryDirectory() as tmp:
        for n in names:
            up.script(n, text=f"answer from {n} " * 40)
        up.script("judge", text=review_json({label: (7, 7, 7) for label in labels}))
        up.script("fuser", text="fused answer")
        Path(tmp, "lab.toml").write_text(lab_toml(up.url, names, deadline_s=30))
        registry = EnsembleRegistry.load([tmp])
        async with FusionEngine(registry) as engine:
            await engine.fuse("warm up", ensemble="lab")
            walls = []
            for i in range(args.runs):
                t0 = time.perf_counter()
                await engine.fuse(f"question {i}", ensemble="lab")
                walls.append(time.perf_counter() - t0)
            calls = args.drafters + 2
            print(f"overhead: {args.runs} runs of {args.drafters} drafts + review + synthesis ({calls} HTTP calls)")
            print(f"  wall per run: median {statistics.median(walls) * 1000:.1f} ms, "
                  f"p95 {sorted(walls)[int(0.95 * len(walls)) - 1] * 1000:.1f} ms")

            for n in names:
                up.script(n, text=f"answer from {n}", delay=args.delay)
            result = await engine.fuse("slow drafts", ensemble="lab")
            ratio = result.totals.draft_s / args.delay
            print(f"parallelism: {args.drafters} drafters x {args.delay:.2f} s each -> drafting took "
                  f"{result.totals.draft_s:.3f} s ({ratio:.2f}x one draft; sequential would be {args.drafters:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--drafters", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="a few runs, to check the benchmark still runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.delay = 3, 0.05
    anyio.run(bench, args)


if __name__ == "__main__":
    main()
