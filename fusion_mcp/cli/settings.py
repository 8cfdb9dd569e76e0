"""`fusion-mcp config`: every setting's effective value and where it came from, secrets masked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

EXAMPLES = """\
examples:
  fusion-mcp config                         each setting, its value, and default / env var / flag
  fusion-mcp config --json                  the same as JSON
  FUSION_MCP_TOOL_TIMEOUT=20 fusion-mcp config

Every setting is listed in docs/settings.md. API keys are not settings (each provider's api_key_env
is read when a call needs it): `fusion-mcp ensembles` says which keys an ensemble still needs.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="show the effective settings and where each came from",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console, _err: Console) -> int:
    rows = args.settings.rows()
    if args.json:
        payload = [{"variable": var, "value": value, "source": source} for var, value, source in rows]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("setting", "value", "from"):
        table.add_column(column, overflow="fold")
    for var, value, source in rows:
        table.add_row(Text(var), Text(value), Text(source))
    console.print(table)
    return 0
