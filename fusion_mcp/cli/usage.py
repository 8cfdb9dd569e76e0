"""`fusion-mcp usage`: what each user spent, per day and ensemble, from the server's usage ledger."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from rich.console import Console

EXAMPLES = """\
examples:
  fusion-mcp usage                          every user, the last 30 days (UTC), from this machine's ledger
  fusion-mcp usage --user alice --since 2026-12-01
  fusion-mcp usage --store redis://redis.internal:6379/0 --json
"""
DEFAULT_DAYS = 30


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2026-12-01") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("usage", help="runs, calls, tokens and cost per user and day (a team endpoint's ledger)",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default=None, help="only this user (their token's sub)")
    parser.add_argument("--since", type=_date, default=None, metavar="DATE",
                        help=f"first day, YYYY-MM-DD, UTC (default {DEFAULT_DAYS} days ago)")
    parser.add_argument("--json", action="store_true", help="print the rows and totals as JSON")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="the servers' shared store, redis://HOST:PORT/DB (default $FUSION_MCP_STORE, "
                             "else this machine's ledger beside the call cache)")
    parser.set_defaults(run=run)


async def _rows(store: str | None, user: str | None, since: str) -> list[Any]:
    from ..team.ledger import ledger_for

    if store is None:
        return await ledger_for().rows(user, since)
    from ..store.redis_client import check, connect
    from ..store.redis_store import PREFIX

    client = connect(store)
    try:
        await check(client, store)
        return await ledger_for(client, PREFIX).rows(user, since)
    finally:
        await client.aclose()


def run(args: argparse.Namespace, console: Console, _err: Console) -> int:
    import anyio
    from rich.table import Table

    from ..config.pricing import format_cost
    from ..team.usage import usage_report

    since = args.since or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    rows = anyio.run(_rows, args.settings.with_flags(store=args.store).store, args.user, since)
    report = usage_report(rows)
    if args.json:
        sys.stdout.write(json.dumps({"since": since, "user": args.user, **report}, indent=2) + "\n")
        return 0
    if not rows:
        console.print(f"no usage recorded since {since}" + (f" for {args.user}" if args.user else ""))
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, right in (("day", False), ("user", False), ("ensemble", False), ("runs", True), ("calls", True),
                        ("tokens in", True), ("tokens out", True), ("cost", True)):
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    for r in rows:
        table.add_row(r.day, r.user, r.ensemble, str(r.runs), str(r.calls), str(r.input_tokens), str(r.output_tokens),
                      format_cost(r.cost_usd))
    t = report["total"]
    table.add_row("total", "", "", str(t["runs"]), str(t["calls"]), str(t["input_tokens"]), str(t["output_tokens"]),
                  format_cost(t["cost_usd"]), style="bold")
    console.print(table)
    return 0
