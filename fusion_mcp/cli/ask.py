"""`fusion-mcp ask`: answer one question with an ensemble, live progress on a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from .console import add_ensemble_dirs, positive_seconds, positive_usd
from .help_format import WrappedHelp

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from rich.console import Console

EXAMPLES = """\
examples:
  fusion-mcp ask "How much does the ball cost?" --ensemble local
  fusion-mcp ask "Explain RAID 5" --show-drafts        drafts and the reviewer's reasons too
  fusion-mcp ask "Summarize this" --context "$(cat notes.txt)"
  fusion-mcp ask "2+2?" --json | jq .answer           the whole result, draft texts included

exit codes: 0 answered, 1 no model answered, 2 a setup problem (unknown ensemble, missing key or package)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser("ask", help="answer one question with an ensemble", epilog=EXAMPLES,
                         description="Send a question to every drafter of an ensemble, have the reviewer "
                                     "score the drafts, and print the fused answer.",
                         formatter_class=WrappedHelp)
    add_ensemble_dirs(ask, "--ensembles", "--ensemble-dir")
    ask.add_argument("question")
    ask.add_argument("--ensemble", "-e", help="ensemble name (default: see `fusion-mcp ensembles`)")
    ask.add_argument("--context", help="background text the models should use")
    ask.add_argument("--deadline", type=positive_seconds,
                     help="whole-run deadline in seconds (default: the ensemble's)")
    ask.add_argument("--drafter", action="append", dest="drafters", metavar="MODEL",
                     help="a drafting model for this call, provider:model-id "
                          "(repeatable, up to 8; replaces the ensemble's)")
    ask.add_argument("--reviewer", metavar="MODEL", help="the reviewer for this call, provider:model-id")
    ask.add_argument("--synthesizer", metavar="MODEL", help="the synthesizer for this call, provider:model-id")
    ask.add_argument("--max-cost", type=positive_usd, metavar="USD",
                     help="refuse the run if its estimated cost could pass this; no call starts past it")
    ask.add_argument("--json", action="store_true", help="print the whole result as JSON (draft texts included)")
    ask.add_argument("--no-draft-text", action="store_true", help="with --json: leave the draft texts out")
    ask.add_argument("--show-drafts", action="store_true", help="print each draft and the reviewer's reasons too")
    ask.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import anyio

    return anyio.run(_ask, args, console, err)


def check_ready(ensemble: object) -> None:
    """Stops before any model call when the ensemble cannot run here: one line per cause."""
    from ..config.ensembles import Ensemble
    from ..errors import EnsembleNotReadyError

    assert isinstance(ensemble, Ensemble)
    reasons = ensemble.not_ready()
    if reasons:
        raise EnsembleNotReadyError(f"ensemble {ensemble.name!r} cannot run here: {'; '.join(reasons)}")


async def _ask(args: argparse.Namespace, console: Console, err: Console) -> int:
    from ..config.ensemble_registry import EnsembleRegistry
    from ..config.overrides import with_roles
    from ..errors import ConfigError
    from ..fusion.engine import FusionEngine
    from .render import LiveProgress, print_result

    if not args.question.strip():
        raise ConfigError('the question is empty: give one, e.g. fusion-mcp ask "What is 2+2?"')
    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=args.settings)
    ensemble = with_roles(registry.get(args.ensemble), args.drafters, args.reviewer, args.synthesizer)
    check_ready(ensemble)
    async with FusionEngine.from_settings(args.settings, registry=registry) as engine:
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
        if args.no_draft_text:
            for d in payload["drafts"]:
                d["text"] = None
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        print_result(console, result, args.show_drafts)
    return 0
