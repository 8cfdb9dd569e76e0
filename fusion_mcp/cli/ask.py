"""`fusion-mcp ask`: answer one question with an ensemble, live progress on a terminal."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from .console import add_ensemble_dirs, positive_seconds, positive_usd


def add_parser(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser("ask", help="answer one question with an ensemble")
    add_ensemble_dirs(ask, "--ensembles", "--ensemble-dir")
    ask.add_argument("question")
    ask.add_argument("--ensemble", "-e", help="ensemble name (default: see `fusion-mcp ensembles`)")
    ask.add_argument("--context", help="background text the models should use")
    ask.add_argument("--deadline", type=positive_seconds, help="whole-run deadline in seconds (default: the ensemble's)")
    ask.add_argument("--drafter", action="append", dest="drafters", metavar="MODEL",
                     help="a drafting model for this call, provider:model-id (repeatable, up to 8; replaces the ensemble's)")
    ask.add_argument("--reviewer", metavar="MODEL", help="the reviewer for this call, provider:model-id")
    ask.add_argument("--synthesizer", metavar="MODEL", help="the synthesizer for this call, provider:model-id")
    ask.add_argument("--max-cost", type=positive_usd, metavar="USD",
                     help="refuse the run if its estimated cost could pass this; no call starts past it")
    ask.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ask.add_argument("--show-drafts", action="store_true", help="print each draft too")
    ask.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import anyio

    return anyio.run(_ask, args, console, err)


async def _ask(args: argparse.Namespace, console: Console, err: Console) -> int:
    from ..config.ensembles import EnsembleRegistry
    from ..config.overrides import with_roles
    from ..errors import ConfigError
    from ..fusion.engine import FusionEngine
    from .render import LiveProgress, print_result

    registry = EnsembleRegistry.load(args.ensemble_dirs or [])
    ensemble = with_roles(registry.get(args.ensemble), args.drafters, args.reviewer, args.synthesizer)
    missing = ensemble.missing_keys()
    if missing:
        raise ConfigError(f"ensemble {ensemble.name!r} needs {', '.join(missing)}: set it in the environment")
    async with FusionEngine(registry) as engine:
        if err.is_terminal and not args.json:
            models = [("draft", d.ref) for d in ensemble.drafters]
            models += [("review", ensemble.reviewer.ref)] if ensemble.reviewer else []
            models += [("synthesis", ensemble.synthesizer.ref)] if ensemble.synthesizer else []
            progress = LiveProgress(err, models)
            with progress.live:
                result = await engine.fuse(args.question, ensemble=ensemble, context=args.context,
                                           deadline_s=args.deadline, on_event=progress, on_text=progress.text,
                                           max_cost_usd=args.max_cost)
        else:
            result = await engine.fuse(args.question, ensemble=ensemble, context=args.context, deadline_s=args.deadline,
                                       max_cost_usd=args.max_cost)
    if args.json:
        payload = result.model_dump(mode="json")
        if not args.show_drafts:
            for d in payload["drafts"]:
                d["text"] = None
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        print_result(console, result, args.show_drafts)
    return 0
