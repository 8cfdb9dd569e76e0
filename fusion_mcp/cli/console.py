"""What the command-line layers share: consoles sized for terminals and pipes, argument types."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

PIPE_WIDTH = 200  # piped output gets wide lines rather than rich's 80 columns, so tables are not cut


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles: the terminal's width, or COLUMNS when set, else PIPE_WIDTH."""
    from rich.console import Console

    wide = None if os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH
    out = Console() if sys.stdout.isatty() else Console(width=wide)
    err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=wide)
    return out, err


MAX_SECONDS = 3600.0  # an ensemble file's own ceiling for deadline_s


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:g} seconds, not {text}")
    return value


def positive_usd(text: str) -> float:
    """An argparse type: an amount of US dollars above zero."""
    try:
        value = float(text.removeprefix("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of dollars, e.g. 0.05") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number of dollars above 0, not {text}")
    return value


def output_folder(path: str) -> Path:
    """The report folder, made now: a path that cannot be a folder is a one-line error before any
    model call is paid for, not a traceback after."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot make the report folder ({exc.strerror or exc})") from None
    return folder


def add_ensemble_dirs(parser: argparse.ArgumentParser, *flags: str) -> None:
    """The option that adds folders of ensemble files (`args.ensemble_dirs`)."""
    parser.add_argument(*flags, dest="ensemble_dirs", action="append", metavar="DIR",
                        help="extra folder of ensemble .toml files (repeatable; overrides shipped ones)")


def progress_bar(label: str, err: Console) -> Progress:
    """The progress bar eval and tune draw on stderr (rich loads here, when a command runs)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(f"[bold]{label}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=not err.is_terminal)
