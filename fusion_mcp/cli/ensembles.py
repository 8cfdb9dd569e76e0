"""`fusion-mcp ensembles`: what `list_ensembles` shows MCP hosts, as a table that fits 80 columns."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .console import add_ensemble_dirs
from .help_format import WrappedHelp

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from rich.console import Console

EXAMPLES = """\
examples:
  fusion-mcp ensembles                 which ensembles exist, their models, and what each still needs
  fusion-mcp ensembles --json          the same as the list_ensembles tool returns
  fusion-mcp ensembles --ensembles ~/my-ensembles
"""
ROLE_TAGS = {"drafter": "draft", "reviewer": "review", "synthesizer": "synth"}
WIDE = 110


def _needs(e: object) -> list[str]:
    """What an ensemble lacks, one line per cause: keys to set, packages to install."""
    from ..config.ensemble_list import EnsembleInfo

    assert isinstance(e, EnsembleInfo)
    keys = [f"set {', '.join(e.missing_keys)}"] if e.missing_keys else []
    return keys + list(e.missing_local)


def add_parser(sub: argparse._SubParsersAction) -> None:
    ens = sub.add_parser("ensembles", help="list ensembles, their models and what each needs to run",
                         epilog=EXAMPLES, formatter_class=WrappedHelp)
    add_ensemble_dirs(ens, "--ensembles", "--ensemble-dir")
    ens.add_argument("--json", action="store_true", help="print the listing as JSON")
    ens.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, _err: Console) -> int:
    from ..config.ensemble_list import ensemble_list_of
    from ..config.ensemble_registry import EnsembleRegistry
    from ..config.pricing import cost_column

    # the same data list_ensembles gives MCP hosts
    from ..fusion.estimate import reference_estimate

    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=args.settings)
    listing = ensemble_list_of(registry, args.settings.pricing, reference_estimate)
    if args.json:
        sys.stdout.write(listing.model_dump_json(indent=2) + "\n")
        return 0
    # One models column (role and name per line), folded rather than cut with an ellipsis. Below
    # WIDE columns the deadline and the readiness move out of the table (readiness as notes below
    # it), so model names keep their room at 80 columns.
    wide = console.width >= WIDE
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ensemble", overflow="fold", min_width=8)
    table.add_column("models", overflow="fold", min_width=24)
    if wide:
        table.add_column("deadline", justify="right", no_wrap=True)
    table.add_column("cost/call", justify="right", no_wrap=True)
    if wide:
        table.add_column("ready", overflow="fold")
    costs = cost_column([e.estimated_cost_usd for e in listing.ensembles])
    for e, cost in zip(listing.ensembles, costs, strict=False):
        models = "\n".join(f"{ROLE_TAGS[m.role]:<6} {m.model}" for m in e.models)
        name = e.name + (("\n(default)" if not wide else " (default)") if e.default else "")
        if wide:
            ready = "yes" if e.ready else "no: " + "; ".join(_needs(e))
            table.add_row(Text(name), Text(models), f"{e.deadline_s:g} s", cost, Text(ready))
        else:
            table.add_row(Text(name + ("" if e.ready else "\nnot ready")), Text(models), cost)
    console.print(table)
    if not wide:
        for e in listing.ensembles:
            for why in _needs(e):
                console.print(f"{e.name} needs: {why}", style="yellow", markup=False, highlight=False)
    if listing.default is not None:
        console.print(f"default: {listing.default} ({listing.default_reason})", markup=False, highlight=False)
    else:  # no ensemble can run here: the reason says what each lacks
        console.print(f"no default: {listing.default_reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"cost: {listing.cost_assumption}", style="dim", markup=False, highlight=False)
    for e in listing.ensembles:
        for warning in e.warnings:
            console.print(f"warning: {e.name}: {warning}", style="yellow", markup=False, highlight=False)
    for error in listing.broken_files.values():
        console.print(f"error: {error}", style="red", markup=False, highlight=False)
    return 0
