"""`fusion-mcp models`: what `list_models` shows MCP hosts, as a table."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .console import add_ensemble_dirs

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the providers' models with context length and price")
    add_ensemble_dirs(models, "--ensembles", "--ensemble-dir")
    models.add_argument("--provider", help="only this provider, e.g. openrouter")
    models.add_argument("--search", help="words that must all appear in the model reference")
    models.add_argument("--refresh", action="store_true", help="fetch again even if the cached listing is fresh")
    models.add_argument("--limit", type=int, default=200, help="most rows shown (default 200)")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, err: Console) -> int:
    import anyio

    return anyio.run(_models, args, console, err)


def _local_models(registry: object, provider: str | None, search: str | None) -> list[str]:
    """The embedded models the ensembles use: they run here, so no listing has them."""
    words = (search or "").lower().split()
    refs = {role.ref for ens in registry.ensembles.values() for _, role in ens.roles  # type: ignore[attr-defined]
            if role.provider.kind == "local" and provider in (None, role.provider.name)}
    return sorted(r for r in refs if all(w in r.lower() for w in words))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.1f} h" if seconds < 86400 * 2 else f"{seconds / 86400:.0f} d"


async def _models(args: argparse.Namespace, console: Console, err: Console) -> int:
    import httpx2 as httpx

    from ..config.ensemble_registry import EnsembleRegistry
    from ..config.model_search import search_models
    from ..errors import ConfigError

    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=args.settings)
    try:
        async with httpx.AsyncClient() as client:
            listing = await search_models(registry, client, args.settings.models_cache_dir, provider=args.provider,
                                          search=args.search, refresh=args.refresh, limit=args.limit)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        sys.stdout.write(listing.model_dump_json(indent=2) + "\n")
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for col in ("model", "context", "$/M in", "$/M out"):
        table.add_column(col)
    local = _local_models(registry, args.provider, args.search)
    for ref in local:
        table.add_row(Text(ref), "-", "0", "0")
    for m in listing.models:
        table.add_row(Text(m.model), f"{m.context_length:,}" if m.context_length else "-",
                      "-" if m.input_usd_per_mtok is None else f"{m.input_usd_per_mtok:g}",
                      "-" if m.output_usd_per_mtok is None else f"{m.output_usd_per_mtok:g}")
    reached = [p for p in listing.providers if p.source != "none"]
    if listing.providers and not reached:
        names = ", ".join(p.provider for p in listing.providers)
        shown = ("; showing the embedded models that run here" if len(local) > 1 else
                 "; showing the embedded model that runs here" if local else "")
        err.print(f"offline: no provider's model listing could be reached ({names}), and none is cached{shown}. "
                  "Run it again once online (listings are cached for a day).",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
    if local or listing.models:
        console.print(table)
    if listing.matched > len(listing.models):
        console.print(f"{listing.matched - len(listing.models)} more; narrow with --search or raise --limit",
                      style="dim", markup=False, highlight=False)
    for p in listing.providers:
        line = f"{p.provider}: {p.source}, {p.models} models, age {_age(p.age_s)}"
        line += f" ({p.error})" if p.error else ""
        err.print(line, style="dim" if p.source != "none" else "yellow", markup=False, highlight=False)
    return 0
