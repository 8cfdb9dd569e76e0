"""What `fusion-mcp eval` itself costs in time, apart from the models: items per second with scripted
models that answer after a fixed delay, at several concurrencies, and a rerun answered by the cache.

Runs the eval CLI against the loopback upstream the tests use (real HTTP on 127.0.0.1).

    .venv/bin/python bench/eval_throughput.py [--items 60] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_mcp.cli.main import main
from tests.conftest import lab_toml, review_json
from tests.upstream import Behaviour, Upstream


def run(args: list[str]) -> tuple[float, dict]:
    out = Path(args[args.index("--out") + 1])
    started = time.perf_counter()
    code = main(args)
    wall = time.perf_counter() - started
    assert code == 0, code
    return wall, json.loads((out / "results.json").read_text())


def bench(items: int, delay: float) -> None:
    os.environ.setdefault("LAB_KEY", "bench-key")
    with Upstream() as up, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("a", "b", "c"):
            up.script(name, Behaviour(text="Adding.\nAnswer: 42", delay=delay, cost=0.001))
        up.script("judge", Behaviour(text=review_json({k: (7, 7, 7) for k in "ABC"}), delay=delay, cost=0.001))
        up.script("fuser", Behaviour(text="Answer: 42", delay=delay, cost=0.001))
        (folder / "ens").mkdir()
        (folder / "ens" / "trio.toml").write_text(
            lab_toml(up.url, ["a", "b", "c"], provider_extra="max_retries = 0\nmax_concurrency = 64"))
        data = folder / "d.jsonl"
        data.write_text("".join(json.dumps({"question": f"What is {i} plus {42 - i}?", "answer": "42"}) + "\n"
                                for i in range(items)))
        print(f"{items} items, trio ensemble, each call {delay:.2f} s")
        for concurrency in (1, 4, 16):
            cache = folder / f"cache-{concurrency}.sqlite3"
            base = ["eval", "--ensemble-dir", str(folder / "ens"), "-d", str(data), "-e", "trio", "--cache", str(cache),
                    "--concurrency", str(concurrency), "--out", str(folder / f"out-{concurrency}")]
            total, result = run(base)
            wall = result["run"]["wall_s"]  # the runner alone, without startup and report writing
            # The critical path, from the calls made: the three drafts at once, then each call after them
            # in turn (the review is skipped when the drafts agree, as these do).
            critical = delay * (1 + result["run"]["calls"] / items - 3)
            ideal = items * critical / concurrency
            print(f"  concurrency {concurrency:>2}: {wall:6.2f} s, {items / wall:6.2f} items/s "
                  f"(ideal {ideal:.2f} s at a critical path of {critical:.2f} s an item; "
                  f"overhead {(wall - ideal) / items * 1000:+.1f} ms/item), "
                  f"{result['run']['calls']} calls; with startup and report {total:.2f} s")
            if concurrency == 16:
                total, result = run(base)
                print(f"  rerun from the cache: {result['run']['wall_s']:6.2f} s (with report {total:.2f} s), {result['run']['cached_calls']} of "
                      f"{result['run']['calls']} calls cached, spent ${result['run']['spent_usd']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="a few items, to check the benchmark still runs (CI)")
    ns = parser.parse_args()
    bench(4 if ns.quick else ns.items, 0.01 if ns.quick else ns.delay)
