"""How long the embedded model takes: load, one call, and whole fusion runs on the local ensemble.

    .venv/bin/python bench/local_latency.py [--runs 3] [--ensemble local] [--question "..."]

Prints one line per run with the stage times and token counts, then the medians. No assertions:
the numbers go to docs/local-model.md and depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import anyio
from _short_runs import drafts_only

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.config.settings import Settings
from fusion_mcp.providers import ChatRequest, Message
from fusion_mcp.providers.local import LocalProvider, resolve_model_path
from fusion_mcp.providers.local_runtime import configure
from fusion_mcp.providers.spec import BUILTIN_PROVIDERS

QUESTIONS = [
    "A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How much does the ball cost?",
    "Why is the sky blue?",
    "Name three prime numbers greater than 10.",
]


async def main(runs: int, ensemble: str, question: str | None, quick: bool) -> None:
    configure(Settings.from_env().local_runtime)  # FUSION_MCP_LOCAL_*, as FusionEngine.from_settings does
    print(f"cpus: {os.cpu_count()}  model: {resolve_model_path('local', 'smollm2')}")
    provider = LocalProvider(BUILTIN_PROVIDERS["local"])
    request = ChatRequest(messages=[Message(role="user", content="Say hello.")], max_tokens=64, temperature=0)
    t = time.perf_counter()
    first = await provider.complete("smollm2", request, timeout_s=120)
    print(f"first call (load + {first.usage.output_tokens} tokens): {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    second = await provider.complete("smollm2", request, timeout_s=120)
    print(f"second call ({second.usage.output_tokens} tokens): {time.perf_counter() - t:.2f} s")

    rows: list[dict[str, float]] = []
    async with FusionEngine(EnsembleRegistry.load()) as engine:
        for i in range(runs):
            q = question or QUESTIONS[i % len(QUESTIONS)]
            ens = engine.registry.get(ensemble)
            r = await engine.fuse(q, ensemble=drafts_only(ens) if quick else ens)
            row = {
                "wall": r.totals.wall_s, "drafts": r.totals.draft_s, "review": r.totals.review_s,
                "synthesis": r.totals.synthesis_s, "in": r.totals.input_tokens, "out": r.totals.output_tokens,
            }
            rows.append(row)
            print(f"run {i + 1}: wall {row['wall']:.1f} s (drafts {row['drafts']:.1f}, review {row['review']:.1f}, "
                  f"synthesis {row['synthesis']:.1f}); tokens {row['in']:.0f} in / {row['out']:.0f} out; "
                  f"review {r.review.status}; answer from {r.answer_source}; degraded={r.degraded}")
    if rows:
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"median of {runs}: wall {med['wall']:.1f} s (drafts {med['drafts']:.1f}, review {med['review']:.1f}, "
              f"synthesis {med['synthesis']:.1f})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ensemble", default="local")
    ap.add_argument("--question")
    ap.add_argument("--quick", action="store_true", help="one run, drafts only, of a few tokens each, to check the benchmark still runs (CI)")
    args = ap.parse_args()
    anyio.run(main, 1 if args.quick else args.runs, args.ensemble, args.question, args.quick)
