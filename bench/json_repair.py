"""What a hostile review of brackets costs the truncated-JSON repair (docs/security.md): one linear
pass with a depth cap, so 200,000 `[` cost well under a millisecond to close and to parse.

    .venv/bin/python bench/json_repair.py [--runs 20] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_mcp.fusion.json_repair import close_truncated, load_truncated

REPLIES = {"200,000 [": "[" * 200_000, "100,000 {\"a\": [": '{"a": [' * 100_000, "200,000 {": "{" * 200_000}


def median_ms(fn: Callable[[str], Any], text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 runs of each")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    for name, text in REPLIES.items():
        print(f"{name}: repair (close_truncated) median {median_ms(close_truncated, text, runs):.2f} ms, "
              f"repair and parse (load_truncated) {median_ms(load_truncated, text, runs):.2f} ms, of {runs}", flush=True)


if __name__ == "__main__":
    main()
