"""What `fusion-mcp tune` itself costs in time, apart from the models: 100 items × 6 candidates (the
issue's target: seconds of harness time), scripted models that answer at once or after a fixed delay,
then the same tune again, answered by the call cache.

Runs the tune CLI against the loopback upstream the tests use (real HTTP on 127.0.0.1).

    .venv/bin/python bench/tune_throughput.py [--quick] [--items 100] [--candidates 6] [--delay 0.05]

`--delay 0` is the issue's measurement (models that answer at once); `--quick`, 20 items answered at
once, checks that the benchmark runs (the test suite's smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_mcp.cli.main import main
from tests.conftest import drafts_in_prompt, lab_toml, review_json
from tests.upstream import Behaviour, Upstream


def _user(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


def drafter(k: int, delay: float) -> Behaviour:
    """Candidate k is right unless the item's number is divisible by k + 2: different error sets."""
    def answer(body: dict[str, Any]) -> str:
        text = _user(body)
        a = int(text.split("What is ", 1)[1].split(" ", 1)[0])
        return f"m{k}\nAnswer: {a + 1 if a % (k + 2) else a + 2}"
    return Behaviour(text=answer, delay=delay, cost=0.001 * (k + 1))


def judge(body: dict[str, Any]) -> str:
    text = _user(body)
    a = int(text.split("What is ", 1)[1].split(" ", 1)[0])
    return review_json({label: (9, 9, 9) if d.endswith(f"Answer: {a + 1}") else (1, 1, 1)
                        for label, d in drafts_in_prompt(text).items()})


def fuser(body: dict[str, Any]) -> str:
    return next(iter(drafts_in_prompt(_user(body)).values()))


def run(args: list[str]) -> tuple[float, dict[str, Any]]:
    out = Path(args[args.index("--out") + 1])
    started = time.perf_counter()
    code = main(args)
    assert code == 0, code
    return time.perf_counter() - started, json.loads((out / "tune.json").read_text())


def bench(items: int, candidates: int, delay: float, concurrency: int) -> None:
    os.environ.setdefault("LAB_KEY", "bench-key")
    with Upstream() as up, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = [f"m{k}" for k in range(candidates)]
        for k, name in enumerate(names):
            up.script(name, drafter(k, delay))
        up.script("judge", Behaviour(text=judge, delay=delay, cost=0.001))
        up.script("fuser", Behaviour(text=fuser, delay=delay, cost=0.001))
        (folder / "ens").mkdir()
        (folder / "ens" / "lab.toml").write_text(
            lab_toml(up.url, ["m0"], provider_extra="max_retries = 0\nmax_concurrency = 64"))
        data = folder / "d.jsonl"
        data.write_text("".join(json.dumps({"question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n"
                                for i in range(items)))
        args = ["tune", "--ensemble-dir", str(folder / "ens"), "-d", str(data),
                "-c", ",".join(f"lab:{n}" for n in names), "--reviewers", "lab:judge", "--synthesizers", "lab:fuser",
                "--cache", str(folder / "cache.sqlite3"), "--concurrency", str(concurrency),
                "--out", str(folder / "out"), "--json"]
        print(f"{items} items × {candidates} candidates, each call {delay:.2f} s, concurrency {concurrency}")
        for label in ("first tune", "same tune again (call cache)"):
            saved, sys.stdout = sys.stdout, open(os.devnull, "w")  # --json goes to stdout
            try:
                total, result = run(args)
            finally:
                sys.stdout.close()
                sys.stdout = saved
            r = result["run"]
            confirm = len(result["confirmed_panels"]) * items
            print(f"  {label}: tune {r['wall_s']:.2f} s ({items * candidates} drafts + {confirm} confirmations; "
                  f"{(r['calls'] - r['cached_calls'])} upstream calls), {len(result['panels'])} panels scored; "
                  f"with startup, report and plot {total:.2f} s")
            print(f"    recommended: {result['recommended']['label']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 items, models that answer at once")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each model call takes (0: at once)")
    parser.add_argument("--concurrency", type=int, default=16)
    ns = parser.parse_args()
    if ns.quick:
        ns.items, ns.delay = 20, 0.0
    bench(ns.items, ns.candidates, ns.delay, ns.concurrency)
