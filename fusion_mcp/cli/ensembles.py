"""`fusion-mcp ensembles`: what `list_ensembles` shows MCP hosts, as a table."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from .console import add_ensemble_dirs


def add_parser(sub: argparse._SubParsersAction) -> None:
    ens = sub.add_parser("ensembles", help="list ensembles, their models and missing keys")
    add_ensemble_dirs(ens, "--ensembles", "--ensemble-dir")
    ens.add_argument("--json", action="store_true")
    ens.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, _err: Console) -> int:
    from ..config.ensembles import EnsembleRegistry
    from ..config.listing import ensemble_list_of
    from ..config.pricing import format_cost

    listing = ensemble_list_of(EnsembleRegistry.load(args.ensemble_dirs or []))  # the same data list_ensembles gives MCP hosts
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
    for e in listing.ensembles:
        for warning in e.warnings:
            console.print(f"warning: {e.name}: {warning}", style="yellow", markup=False, highlight=False)
    for error in listing.broken_files.values():
        console.print(f"error: {error}", style="red", markup=False, highlight=False)
    return 0
