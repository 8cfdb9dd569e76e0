"""Runs at a real model's pace through `fusion-mcp serve` over stdio, as a host with a time limit calls it.

For each profile of bench/profiles.toml, a loopback upstream plays the models at their pace (streamed
when asked), and a host calls fused_answer, then get_run while the answer is `running`, each call cut
at the host's limit (Claude Desktop: ~60 s). Reported per profile: the share of runs whose answer came
from the synthesis (not a fallback), the share of tool calls back within the host's limit, p50/p95 time
to the answer, and runs lost (no answer at all; must be 0).

    .venv/bin/python bench/host_limit.py [--runs 2] [--scale 1.0] [--profiles frontier,budget]
    .venv/bin/python bench/host_limit.py --server-path /path/to/another/checkout   # e.g. a baseline
    .venv/bin/python bench/host_limit.py --quick      # a scaled-down smoke run (CI)

`--scale 0.1` runs every time ten times faster (paces, deadlines and limits alike).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import lab_toml, scoring_reviewer  # noqa: E402
from tests.upstream import Behaviour, Upstream  # noqa: E402

HOST_LIMIT_S = 60.0
TOOL_TIMEOUT_S = 40.0


def script(up: Upstream, profile: dict[str, Any], scale: float) -> list[str]:
    """Script every model of the profile; returns the drafters' model ids in order."""
    def pace(m: dict[str, Any]) -> dict[str, Any]:
        return dict(ttft=m["ttft_s"] * scale, tokens_per_s=m["tokens_per_s"] / scale, output_tokens=m["tokens"],
                    hang=bool(m.get("hang")))

    drafters = []
    for i, m in enumerate(profile["drafters"]):
        name = f"{m['model']}#d{i}"
        up.script(name, Behaviour(text=f"Reasoning of drafter {i}...\nAnswer: {40 + i}", **pace(m)))
        drafters.append(name)
    reviewer = profile["reviewer"]
    up.script(reviewer["model"] + "#review", scoring_reviewer({}))
    up.behaviours[reviewer["model"] + "#review"].__dict__.update(pace(reviewer))
    synth = profile["synthesizer"]
    up.script(synth["model"] + "#synthesis", Behaviour(text="The fused answer. Answer: 42", **pace(synth)))
    return drafters


def priors(profile: dict[str, Any], scale: float) -> str:
    """What the engine knows of these models beforehand: their published paces (as config/paces.toml)."""
    rows = [(f"{m['model']}#d{i}", m) for i, m in enumerate(profile["drafters"])]
    rows += [(profile["reviewer"]["model"] + "#review", profile["reviewer"]),
             (profile["synthesizer"]["model"] + "#synthesis", profile["synthesizer"])]
    return "".join(f'["lab:{ref}"]\nttft_s = {m["ttft_s"] * scale}\ntokens_per_s = {m["tokens_per_s"] / scale}\n\n'
                   for ref, m in rows)


async def host_run(client: Client, question: str, limit: float) -> dict[str, Any]:
    """One question as a host asks it: fused_answer, then get_run until done; every call cut at `limit`."""
    started = time.perf_counter()
    calls, within = 0, 0
    out: dict[str, Any] = {}
    name, args = "fused_answer", {"question": question, "ensemble": "profile"}
    while True:
        t0 = time.perf_counter()
        calls += 1
        try:
            result = await client.call_tool(name, args, read_timeout_seconds=limit)
        except Exception as exc:  # the host gave up on this call (or the server failed)
            return {"calls": calls, "within": within, "lost": True, "why": str(exc)[:80],
                    "elapsed": time.perf_counter() - started}
        within += time.perf_counter() - t0 <= limit
        if result.is_error:
            return {"calls": calls, "within": within, "lost": True, "why": str(getattr(result.content[0], "text", ""))[:80],
                    "elapsed": time.perf_counter() - started}
        out = result.structured_content or {}
        if out.get("status", "done") == "done":
            break
        name, args = "get_run", {"run_id": out["run_id"]}
    return {"calls": calls, "within": within, "lost": not out.get("answer"), "source": out.get("answer_source"),
            "elapsed": time.perf_counter() - started}


async def bench_profile(name: str, profile: dict[str, Any], runs: int, scale: float, server_path: Path | None) -> dict[str, Any]:
    with Upstream() as up, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ensembles"
        folder.mkdir()
        drafters = script(up, profile, scale)
        (folder / "profile.toml").write_text(lab_toml(
            up.url, drafters, reviewer=profile["reviewer"]["model"] + "#review",
            synthesizer=profile["synthesizer"]["model"] + "#synthesis", deadline_s=profile["deadline_s"] * scale,
            min_drafts=profile.get("min_drafts"), provider_extra="max_retries = 0\nmax_concurrency = 16"))
        (folder.parent / "paces.toml").write_text(priors(profile, scale))
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder.parent), "LAB_KEY": "bench-key-123456",
               "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_CACHE": str(folder.parent / "cache.sqlite3"),
               "FUSION_MCP_PACES": str(folder.parent / "paces.toml"), "FUSION_MCP_TOOL_TIMEOUT": str(TOOL_TIMEOUT_S * scale),
               "PYTHONPATH": str(server_path or ROOT)}
        params = StdioServerParameters(command=sys.executable, args=["-m", "fusion_mcp", "serve"], env=env,
                                       cwd=str(server_path or ROOT))
        rows = []
        async with Client(params, mode="legacy") as client:
            for i in range(runs):
                rows.append(await host_run(client, f"Hard question {i} of {name}?", HOST_LIMIT_S * scale))
    answered = [r for r in rows if not r["lost"]]
    times = sorted(r["elapsed"] / scale for r in answered)
    return {
        "profile": name, "deadline_s": profile["deadline_s"], "runs": runs,
        "synthesized": sum(r.get("source") == "synthesis" for r in rows) / runs,
        "within": sum(r["within"] for r in rows) / max(1, sum(r["calls"] for r in rows)),
        "calls": sum(r["calls"] for r in rows),
        "p50": statistics.median(times) if times else None,
        "p95": times[min(len(times) - 1, int(0.95 * len(times)))] if times else None,
        "lost": sum(r["lost"] for r in rows), "why": [r.get("why") for r in rows if r.get("why")][:1],
    }


def show(row: dict[str, Any]) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.1f} s"  # noqa: E731
    return (f"| {row['profile']} | {row['deadline_s']:g} s | {row['runs']} | {row['synthesized']:.0%} | "
            f"{row['within']:.0%} of {row['calls']} | {fmt(row['p50'])} / {fmt(row['p95'])} | {row['lost']} |"
            + (f" {row['why'][0]}" if row["why"] else ""))


async def main(args: argparse.Namespace) -> None:
    profiles = tomllib.loads((ROOT / "bench" / "profiles.toml").read_text())
    chosen = args.profiles.split(",") if args.profiles else list(profiles)
    print(f"host limit {HOST_LIMIT_S:g} s per tool call, tool-time limit {TOOL_TIMEOUT_S:g} s, scale {args.scale:g}"
          + (f", server from {args.server_path}" if args.server_path else ""))
    print("| profile | deadline | runs | answer from synthesis | tool calls within the host limit | "
          "time to answer p50 / p95 | runs lost |")
    print("|---|---|---|---|---|---|---|")
    for name in chosen:
        row = await bench_profile(name, profiles[name], args.runs, args.scale, args.server_path)
        print(show(row), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--profiles", help="comma-separated names from bench/profiles.toml (default: all)")
    parser.add_argument("--server-path", type=Path, help="run the server from this checkout instead")
    parser.add_argument("--quick", action="store_true", help="two profiles, one run each, at a tenth of the pace (CI)")
    ns = parser.parse_args()
    if ns.quick:
        ns.runs, ns.scale, ns.profiles = 1, 0.1, ns.profiles or "frontier,fast-with-a-hang"
    anyio.run(main, ns)
