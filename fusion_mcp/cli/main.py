"""The command line: `fusion-mcp ask | ensembles | serve | eval | tune`. A thin layer over the engine.

Each command is a module with `add_parser` and `run`; heavy imports (the engine, the MCP SDK) wait
until a command runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from ..errors import FusionError, NoDraftsError
from . import ask, ensembles, evaluate, serve, tune
from .console import consoles


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fusion-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    ask.add_parser(sub)
    ensembles.add_parser(sub)
    serve.add_parser(sub)
    evaluate.add_parser(sub)
    tune.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console, err = consoles()
    try:
        return int(args.run(args, console, err) or 0)
    except NoDraftsError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 1
    except FusionError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
