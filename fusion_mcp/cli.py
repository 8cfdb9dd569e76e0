"""The command line: `fusion-mcp ask | ensembles | serve | eval`. A thin layer over the engine."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from . import __version__
from .engine import FusionEngine
from .ensembles import EnsembleRegistry
from .evaluation.cli import add_eval_command
from .errors import ConfigError, FusionError, NoDraftsError
from .formatting import format_cost, scores_text, totals_line
from .mcp_tools import ensemble_list_of
from .terminal import add_ensemble_dirs, consoles, positive_seconds
from .fusion.events import ProgressEvent
from .fusion.result import FusionResult
from .serve_command import add_serve_command


def _registry(args: argparse.Namespace) -> EnsembleRegistry:
    return EnsembleRegistry.load(args.ensemble_dirs or [])


# -- ask ---------------------------------------------------------------------------------------


class _LiveProgress:
    """A per-model status table that updates as drafts, review and synthesis finish."""

    def __init__(self, console: Console, models: list[tuple[str, str]]) -> None:
        self.console = console
        self.rows = {f"{stage}:{i}": [stage, model, "running…", ""] for i, (stage, model) in enumerate(models)}
        self._pending = {stage: [k for k in self.rows if k.startswith(stage)] for stage in ("draft", "review", "synthesis")}
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=True)

    def _table(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("stage", "model", "status", "time"):
            table.add_column(col)
        for row in self.rows.values():
            table.add_row(*row)
        return table

    async def __call__(self, event: ProgressEvent) -> None:
        pending = self._pending.get(event.stage) or []
        key = next((k for k in pending if self.rows[k][1] == event.model), pending[0] if pending else None)
        if key is None:
            return
        pending.remove(key)
        self.rows[key][2] = event.status or "done"
        self.rows[key][3] = f"{event.latency_s:.1f} s" if event.latency_s else ""
        self.live.update(self._table())


def _print_result(console: Console, result: FusionResult, show_drafts: bool) -> None:
    console.print(result.answer or "", markup=False, highlight=False)
    console.print()
    flag = " [bold yellow](degraded)[/]" if result.degraded else ""
    console.rule(f"run {result.run_id} · ensemble {result.ensemble} · answer from {result.answer_source}{flag}", style="dim")
    table = Table(box=None, header_style="bold")
    for col in ("draft", "model", "status", "weight", "scores c/a/l", "agree", "time", "tokens", "cost"):
        table.add_column(col)
    for d in result.drafts:
        tokens = (d.input_tokens or 0) + (d.output_tokens or 0) if d.status == "ok" else 0
        table.add_row(
            d.label, d.model, d.status if not d.error else f"{d.status}: {d.error}"[:70],
            f"{d.weight:.0%}" if d.status == "ok" else "-", scores_text(result, d.label),
            f"{d.agreement:.2f}" if d.agreement is not None else "-", f"{d.latency_s:.1f} s",
            str(tokens) if tokens else "-", format_cost(d.cost_usd) if d.status == "ok" else "-",
        )
    console.print(table)
    for name, stage in (("review", result.review), ("synthesis", result.synthesis)):
        detail = f" ({stage.model}, {stage.latency_s:.1f} s)" if stage.model else ""
        error = f": {stage.error}" if stage.error else ""
        console.print(f"{name}: {stage.status}{detail}{error}", markup=False, highlight=False)
    console.print("total: " + totals_line(result.totals), markup=False, highlight=False)
    for reason in result.degraded_reasons:
        console.print(f"degraded: {reason}", style="yellow", markup=False, highlight=False)
    if show_drafts:
        for d in result.drafts:
            if d.text:
                console.rule(f"draft {d.label} · {d.model}", style="dim")
                console.print(d.text, markup=False, highlight=False)


async def _ask(args: argparse.Namespace, console: Console, err: Console) -> int:
    registry = _registry(args)
    ensemble = registry.get(args.ensemble)
    missing = ensemble.missing_keys()
    if missing:
        raise ConfigError(f"ensemble {ensemble.name!r} needs {', '.join(missing)}: set it in the environment")
    async with FusionEngine(registry) as engine:
        if err.is_terminal and not args.json:
            models = [("draft", d.ref) for d in ensemble.drafters]
            models += [("review", ensemble.reviewer.ref)] if ensemble.reviewer else []
            models += [("synthesis", ensemble.synthesizer.ref)] if ensemble.synthesizer else []
            progress = _LiveProgress(err, models)
            with progress.live:
                result = await engine.fuse(args.question, ensemble=ensemble, context=args.context,
                                           deadline_s=args.deadline, on_event=progress)
        else:
            result = await engine.fuse(args.question, ensemble=ensemble, context=args.context, deadline_s=args.deadline)
    if args.json:
        payload = result.model_dump(mode="json")
        if not args.show_drafts:
            for d in payload["drafts"]:
                d["text"] = None
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _print_result(console, result, args.show_drafts)
    return 0


# -- ensembles ---------------------------------------------------------------------------------


def _ensembles(args: argparse.Namespace, console: Console) -> int:
    listing = ensemble_list_of(_registry(args))  # the same data list_ensembles gives MCP hosts
    if args.json:
        sys.stdout.write(listing.model_dump_json(indent=2) + "\n")
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("ensemble", "drafters", "reviewer", "synthesizer", "deadline", "est. cost/call", "ready"):
        table.add_column(col)
    for e in listing.ensembles:
        by_role = {role: [m.model for m in e.models if m.role == role] for role in ("drafter", "reviewer", "synthesizer")}
        table.add_row(
            e.name + (" (default)" if e.default else ""),
            "\n".join(by_role["drafter"]),
            "\n".join(by_role["reviewer"]) or "-",
            "\n".join(by_role["synthesizer"]) or "-",
            f"{e.deadline_s:g} s",
            format_cost(e.estimated_cost_usd),
            "yes" if e.ready else "no: set " + ", ".join(e.missing_keys),
        )
    console.print(table)
    console.print(f"default: {listing.default} ({listing.default_reason})", markup=False, highlight=False)
    console.print(f"cost: {listing.cost_assumption}", style="dim", markup=False, highlight=False)
    for error in listing.broken_files.values():
        console.print(f"error: {error}", style="red", markup=False, highlight=False)
    return 0


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fusion-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dirs(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_ensemble_dirs(p, "--ensembles", "--ensemble-dir")
        return p

    ask = with_dirs(sub.add_parser("ask", help="answer one question with an ensemble"))
    ask.add_argument("question")
    ask.add_argument("--ensemble", "-e", help="ensemble name (default: see `fusion-mcp ensembles`)")
    ask.add_argument("--context", help="background text the models should use")
    ask.add_argument("--deadline", type=positive_seconds, help="whole-run deadline in seconds (default: the ensemble's)")
    ask.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ask.add_argument("--show-drafts", action="store_true", help="print each draft too")

    ens = with_dirs(sub.add_parser("ensembles", help="list ensembles, their models and missing keys"))
    ens.add_argument("--json", action="store_true")

    add_serve_command(with_dirs(sub.add_parser("serve", help="run the MCP server")))
    # In eval, `--ensembles` names the ensembles to measure (as `--ensemble` does); folders are `--ensemble-dir`.
    evaluation = sub.add_parser("eval", help="measure ensembles on a benchmark")
    add_ensemble_dirs(evaluation, "--ensemble-dir")
    add_eval_command(evaluation)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console, err = consoles()
    try:
        if args.command == "ask":
            return anyio.run(_ask, args, console, err)
        if args.command == "ensembles":
            return _ensembles(args, console)
        return int(args.func(args) or 0)
    except NoDraftsError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 1
    except FusionError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
