"""Settings read from environment variables, checked where they are read: one clear error naming the
variable, never a traceback."""

from __future__ import annotations

import os

from ..errors import ConfigError


def seconds_from_env(name: str, default: float, low: float, high: float) -> float:
    """A number of seconds from `$name`, between `low` and `high`; `default` when unset or empty."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g} seconds")
    return value
