"""`fusion-mcp tune`: the options, the estimate and progress, and the glue to the tune and its report."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..evaluation.names import DATASETS, OBJECTIVES
from .console import add_ensemble_dirs, output_folder, positive_seconds, positive_usd, progress_bar

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from pathlib import Path

    from rich.console import Console


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="find the best ensemble for your own questions, and write it")
    p.description = (
        "Draft every item once with every candidate, score every panel from those drafts, confirm the most "
        "promising with review and synthesis, and recommend one, reported on held-out items."
    )
    add_ensemble_dirs(p, "--ensemble-dir")
    p.add_argument("--dataset", "-d", required=True, metavar="PATH_OR_NAME",
                   help=f"a JSONL file, or a packaged benchmark: {', '.join(DATASETS)} (or mmlu:SUBJECT)")
    p.add_argument("--candidates-from", action="append", metavar="PROVIDER[:WORDS]",
                   help="also take as candidates the models a provider lists (list_models) whose id has every "
                        "word, e.g. openrouter:deepseek (repeatable; see --max-listed)")
    p.add_argument("--max-listed", type=int, default=6, metavar="N",
                   help="at most N candidates from each --candidates-from, in the listing's order (default 6)")
    p.add_argument("--candidates", "-c", action="append", metavar="M1,M2,...|@FILE.toml",
                   help="models to choose among, provider:model-id, comma-separated; or @file.toml with "
                        "[[candidates]] (per-model options, and optionally [[reviewers]], [[synthesizers]])")
    p.add_argument("--reviewers", action="append", metavar="M1,...",
                   help="reviewer choices to try ('none': no review); default: the best single candidate")
    p.add_argument("--synthesizers", action="append", metavar="M1,...",
                   help="synthesizer choices to try ('none': the best-weighted draft); "
                        "default: the best single candidate")
    p.add_argument("--panel-size", type=int, default=3, metavar="K", help="largest panel to consider (default 3)")
    p.add_argument("--confirm", type=int, default=3, metavar="N",
                   help="panels to confirm with review + synthesis (default 3)")
    p.add_argument("--objective", choices=OBJECTIVES, default="accuracy",
                   help="accuracy: the most accurate; cost / latency: the cheapest / fastest within --tolerance of "
                        "it; pareto: the knee of the cost-accuracy front (default accuracy)")
    p.add_argument("--tolerance", type=float, default=1.0, metavar="POINTS",
                   help="accuracy points the cost and latency objectives may give up (default 1)")
    p.add_argument("--holdout", type=_fraction, default=0.4, metavar="FRACTION",
                   help="share of the items held out to report on, never to choose with (default 0.4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample and of the split (default 0)")
    p.add_argument("--limit", type=int, metavar="N", help="tune on a seeded random sample of N items")
    p.add_argument("--max-cost-usd", type=positive_usd, metavar="USD",
                   help="stop before any call if the estimate passes this, and never spend past it")
    p.add_argument("--write", metavar="NAME", help="write the recommendation as NAME.toml to your ensembles folder")
    p.add_argument("--force", action="store_true", help="with --write: replace an existing file")
    p.add_argument("--out", default="tune-out", metavar="DIR", help="folder for tune.json, tune.md, pareto.png")
    p.add_argument("--concurrency", type=int, default=8, metavar="N", help="jobs at once (default 8)")
    p.add_argument("--deadline", type=positive_seconds, metavar="S", help="per-item deadline in seconds (default 45)")
    p.add_argument("--cache", metavar="PATH",
                   help="call cache file (default: $FUSION_MCP_CACHE, else $XDG_DATA_HOME/fusion-mcp/cache.sqlite3, "
                                                     "else ~/.local/share/fusion-mcp/cache.sqlite3)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the call cache (an interrupted tune then starts over)")
    p.add_argument("--json", action="store_true", help="print tune.json to stdout instead of the tables")
    p.set_defaults(run=run)


async def listed_candidates(sources: list[str], limit: int, registry: object, folder: Path) -> list[str]:
    """Model references from the providers' own listings (cached in `folder`, as list_models reads them)."""
    if not sources:
        return []
    import httpx2 as httpx

    from ..config.model_search import search_models

    if limit < 1:
        raise ConfigError(f"--max-listed must be at least 1, not {limit}")
    refs: list[str] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as client:
        for source in sources:
            provider, _, words = source.partition(":")
            try:
                found = await search_models(registry, client, folder, provider=provider.strip(),  # type: ignore[arg-type]
                                            search=words or None, limit=limit)
            except ValueError as exc:
                raise ConfigError(f"--candidates-from {source!r}: {exc}") from None
            if not found.models:
                why = "; ".join(p.error for p in found.providers if p.error) or "no listed model matches"
                raise ConfigError(f"--candidates-from {source!r}: no candidates ({why}); see `fusion-mcp models`")
            refs += [m.model for m in found.models]
    return refs


async def _run(args: argparse.Namespace, console: Console, err: Console) -> int:
    from ..config.ensemble_registry import EnsembleRegistry
    from ..evaluation import tune_report
    from ..evaluation.candidates import load_choices
    from ..evaluation.datasets import load_dataset
    from ..evaluation.tune import Settings, plan, run_tune
    from ..evaluation.tune_write import ensemble_toml, provenance, target, write_ensemble
    from ..fusion.engine import FusionEngine
    from ..store.call_cache import SQLiteCallCache

    out = output_folder(args.out)  # before any model call: a bad --out must not cost a run
    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=args.settings)
    if args.write:
        target(args.write, force=args.force, folder=args.settings.user_ensembles_dir)
    listed = await listed_candidates(args.candidates_from or [], args.max_listed, registry,
                                     args.settings.models_cache_dir)
    choices = load_choices([*(args.candidates or []), *listed], args.reviewers, args.synthesizers, registry)
    roles = [c.role for c in choices.candidates] + [c.role for c in choices.reviewers + choices.synthesizers if c]
    missing = sorted({r.provider.api_key_env for r in roles if r.provider.api_key_env and r.provider.key_required
                      and not os.environ.get(r.provider.api_key_env)})
    if missing:
        raise ConfigError(f"the candidates need {', '.join(missing)}: set it in the environment")
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
    dataset = load_dataset(args.dataset, limit=args.limit, seed=args.seed)
    settings = Settings(panel_size=args.panel_size, confirm=args.confirm, holdout=args.holdout, seed=args.seed,
                        objective=args.objective, tolerance=args.tolerance / 100, max_cost_usd=args.max_cost_usd,
                        deadline_s=args.deadline, concurrency=args.concurrency)
    cache = None if args.no_cache else SQLiteCallCache(args.cache or args.settings.cache_path)
    try:
        tune = plan(dataset, choices, settings, cache, args.settings.pricing)
        err.print(f"tune: {tune.estimate.text()}", markup=False, highlight=False)
        progress = progress_bar("tune", err)
        state: dict[str, Any] = {"task": None, "total": 0, "done": 0, "phase": ""}

        def on_phase(name: str, total: int) -> None:
            state.update(task=progress.add_task(name, total=total), total=total, done=0, phase=name)

        def on_record(_record: object) -> None:
            state["done"] += 1
            progress.advance(state["task"])
            done, total = state["done"], state["total"]
            if not err.is_terminal and (done % max(1, total // 10) == 0 or done == total):
                err.print(f"tune: {state['phase']} {done}/{total}", markup=False, highlight=False)

        async with FusionEngine.from_settings(args.settings, registry=registry, cache=cache) as engine:
            with progress:
                await run_tune(engine, choices, tune, on_phase=on_phase, on_record=on_record)
    finally:
        if cache is not None:
            cache.close()
    written = None
    if args.write:
        assert tune.recommended is not None
        d = tune.dataset
        how = (f"Objective {settings.objective!r} among {len(choices.candidates)} candidates: "
               f"{len(tune.panels)} panels "
               f"scored from their drafts, {len(tune.shortlisted)} confirmed with review and synthesis.")
        sample = f"a seeded sample (seed {d.seed}) of {len(d.items)} of its {d.total} items" if d.seed is not None \
            else f"its {d.total} items"
        data = (f"Data: {d.name} ({d.source}), {sample}: {len(tune.tune_items)} to choose on and "
                f"{len(tune.held_items)} held out (seed {settings.seed}, --holdout {settings.holdout:g}).")
        chosen, later = tune.recommended, tune.recommended.escalate_to
        folder = args.settings.user_ensembles_dir
        escalation = f"{args.write}-escalation" if later is not None else None
        text = ensemble_toml(chosen, provenance(chosen, how, data, tune.reasons), args.deadline, escalation)
        if later is not None and escalation is not None:  # a cascade: its second panel in a file of its own
            why = [f"The ensemble {args.write} escalates to when its drafts disagree."]
            write_ensemble(escalation, ensemble_toml(later, provenance(later, how, data, why), args.deadline),
                           force=args.force, folder=folder)
        written = write_ensemble(args.write, text, force=args.force, folder=folder)
    paths = tune_report.write(out, tune, written)
    if args.json:
        sys.stdout.write(paths["tune.json"].read_text(encoding="utf-8"))
    else:
        tune_report.print_report(console, tune, paths, written)
    return 0


def run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import anyio

    return anyio.run(_run, args, console, err)
