"""The command line: `fusion-mcp ask | ensembles | models | serve | eval | tune | config`. A thin layer over the engine.

Each command is a module with `add_parser` and `run`; heavy imports (the engine, the MCP SDK) wait
until a command runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from ..errors import FusionError, NoDraftsError
from . import ask, ensembles, evaluate, models, serve, settings, tune, usage
from .console import consoles
from .help_format import WrappedHelp

DESCRIPTION = """\
Answer hard questions with several LLMs at once: parallel drafts, a review that
scores them, and one answer fused from them. Use it here or as an MCP server."""
EXAMPLES = """\
examples:
  fusion-mcp ensembles                              what can run here, and the default
  fusion-mcp ask "Why is the sky blue?"             answer with the default ensemble
  fusion-mcp ask "Is 2^61 - 1 prime?" -e frontier-duo --show-drafts
  fusion-mcp serve                                  the MCP server, for Claude Desktop or VS Code
  fusion-mcp eval -d arc-easy --limit 20 -e local   measure an ensemble on a benchmark

Each command has its own --help with examples. Docs: README.md and docs/ in the repository.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-mcp", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=WrappedHelp)
    parser.add_argument("--version", action="version", version=f"fusion-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    ask.add_parser(sub)
    ensembles.add_parser(sub)
    models.add_parser(sub)
    serve.add_parser(sub)
    evaluate.add_parser(sub)
    tune.add_parser(sub)
    usage.add_parser(sub)
    settings.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console, err = consoles()
    try:
        from ..config.settings import Settings

        args.settings = Settings.from_env()  # read once; each command passes it down
        return int(args.run(args, console, err) or 0)
    except NoDraftsError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except FusionError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
