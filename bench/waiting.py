"""Evidence-based waiting, measured: the time plan facing a rate-limiting drafter, a hung drafter, a hung
reviewer and a burst, through `fusion-mcp serve` over streamable HTTP at its default settings, against
the scripted upstream (tests/upstream.py) on 127.0.0.1. Every ensemble has three drafters (quorum 2),
a reviewer and a synthesizer whose models are unknown to the pace book, and a 45 s deadline.

  429 half the time  one drafter answers 429 to every other call; N calls at once
  hung drafter       one drafter never sends a byte; calls one after another
  hung reviewer      the reviewer never sends a byte; calls one after another
  burst              every model answers in 0.3 s; N calls at once

A row passes when every call came back synthesized (not `running`, not the best draft) and within its
bound: p90 under 15 s for the 429 row, at most 5 s past the quorum for a hung drafter and 7 s for a hung
reviewer (the quorum comes at ~0.3 s; a review counts as hung after 4 s), the deadline for the burst.
It exits 1 when a row fails; with --quick (fewer calls, as the test suite runs it on a busy machine)
only when a call was not synthesized.

    .venv/bin/python bench/waiting.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client

from tests.conftest import LAB_KEY, review_json
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream

DRAFT_S = 0.3
DEADLINE_S = 45.0


def ensemble(url: str, prefix: str) -> str:
    lines = [f"deadline_s = {DEADLINE_S}", "min_drafts = 2", "", "[providers.lab]", 'kind = "openai"',
             f'base_url = "{url}/v1"', 'api_key_env = "LAB_KEY"']
    for m in ("d1", "d2", "d3"):
        lines += ["", "[[drafters]]", f'model = "lab:{prefix}-{m}"']
    lines += ["", "[reviewer]", f'model = "lab:{prefix}-judge"', "", "[synthesizer]", f'model = "lab:{prefix}-fuser"']
    return "\n".join(lines) + "\n"


def script(up: Upstream, prefix: str, **faults: dict[str, Any]) -> None:
    for m in ("d1", "d2", "d3"):
        up.script(f"{prefix}-{m}", **{"text": f"Paris ({m}).", "delay": DRAFT_S, **faults.get(m, {})})
    up.script(f"{prefix}-judge", **{"text": review_json({k: (8, 8, 8) for k in "ABC"}), "delay": DRAFT_S,
                                    **faults.get("judge", {})})
    up.script(f"{prefix}-fuser", text="Paris, the capital.", delay=DRAFT_S)


@dataclass
class Row:
    case: str
    calls: int
    synthesized: int
    p50: float
    p90: float
    worst: float
    bound: str
    ok: bool

    def line(self) -> str:
        return (f"{self.case:<20} {self.calls:>5} {self.synthesized:>11} {self.p50:>7.2f} {self.p90:>7.2f} "
                f"{self.worst:>7.2f}  {self.bound:<22} {'pass' if self.ok else 'FAIL'}")


HEADER = f"{'case':<20} {'calls':>5} {'synthesized':>11} {'p50 s':>7} {'p90 s':>7} {'max s':>7}  {'bound':<22} verdict"


async def calls(url: str, ensemble_name: str, n: int, *, together: bool) -> list[tuple[float, bool, str]]:
    """(seconds, synthesized, what came back) per call: all at once, or one after another."""
    out: list[tuple[float, bool, str]] = []
    async with Client(url) as client:
        async def one(i: int) -> None:
            t0 = time.perf_counter()
            r = await client.call_tool("fused_answer", {"question": f"Capital of France? ({ensemble_name} {i})",
                                                        "ensemble": ensemble_name})
            wall = time.perf_counter() - t0
            sc = r.structured_content or {}
            ok = not r.is_error and sc.get("status", "done") != "running" and sc.get("answer_source") == "synthesis"
            said = json.dumps(sc) if sc else "".join(getattr(c, "text", "") for c in r.content)
            out.append((wall, ok, "" if ok else said[:300]))

        if together:
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
        else:
            for i in range(n):
                await one(i)
    return out


def row(case: str, results: list[tuple[float, bool, str]], bound_s: float, bound: str, pct: float) -> Row:
    walls = sorted(r[0] for r in results)
    p90 = walls[max(0, int(round(0.9 * len(walls))) - 1)]
    synthesized = sum(1 for r in results if r[1])
    judged = p90 if pct == 0.9 else walls[-1]
    for r in results:
        if not r[1]:
            print(f"  not synthesized: {r[2]}", flush=True)
    return Row(case, len(results), synthesized, statistics.median(walls), p90, walls[-1], bound,
               synthesized == len(results) and judged <= bound_s)


async def run(args: argparse.Namespace) -> list[Row]:
    folder = Path(tempfile.mkdtemp())
    rows: list[Row] = []
    with Upstream() as up:
        for prefix in ("rl", "hd", "hr", "burst"):
            (folder / f"{prefix}.toml").write_text(ensemble(up.url, prefix))
        script(up, "rl", d1={"status": 429, "fail_share": 0.5})
        script(up, "hd", d1={"hang": True})
        script(up, "hr", judge={"hang": True})
        script(up, "burst")
        env = {**os.environ, "LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder),
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}
        port = free_port()
        log = folder / "server.log"
        proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        try:
            wait_for_port(port, proc, "fusion-mcp serve")  # type: ignore[arg-type]
            url = f"http://127.0.0.1:{port}/mcp"
            n_rl, n_hung, n_burst = (10, 1, 20) if args.quick else (60, 5, 100)
            print(HEADER, flush=True)
            for case, name, n, together, bound_s, bound, pct in (
                ("429 half the time", "rl", n_rl, True, 15.0, "p90 < 15 s", 0.9),
                ("hung drafter", "hd", n_hung, False, 5.3, "max < quorum + 5 s", 1.0),
                ("hung reviewer", "hr", n_hung, False, 7.3, "max < quorum + 7 s", 1.0),
                ("burst", "burst", n_burst, True, DEADLINE_S, f"max < {DEADLINE_S:g} s", 1.0),
            ):
                rows.append(row(case, await calls(url, name, n, together=together), bound_s, bound, pct))
                print(rows[-1].line(), flush=True)
        finally:
            stop_process(proc)  # type: ignore[arg-type]
        tracebacks = log.read_text(errors="replace").count("Traceback")
        if tracebacks:
            print(f"server log: {tracebacks} traceback(s) in {log}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls per row")
    args = parser.parse_args()
    rows = anyio.run(run, args)
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows pass")
    unanswered = [r for r in rows if r.synthesized < r.calls]
    sys.exit(1 if (unanswered if args.quick else failed) else 0)


if __name__ == "__main__":
    main()
