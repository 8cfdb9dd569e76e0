"""Settings read from environment variables, checked where they are read: one clear error naming the
variable, never a traceback."""

from __future__ import annotations

import os

from ..errors import ConfigError
from ..store import DEFAULT_LEASE_S, REDIS_SCHEMES


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


STORE_ENV = "FUSION_MCP_STORE"
LEASE_ENV = "FUSION_MCP_LEASE_S"


def store_url(flag: str | None) -> str | None:
    """The store the user chose (the flag wins over the environment); None for the embedded one.
    A URL of an unknown kind is a one-line error that says what is accepted."""
    url = (flag or os.environ.get(STORE_ENV) or "").strip()
    if url in ("", "memory", "embedded"):
        return None
    if not url.startswith(REDIS_SCHEMES):
        where = "--store" if flag else STORE_ENV
        scheme, sep, rest = url.rpartition("://") if "://" in url else ("", "", url)
        shown = scheme + sep + rest.rsplit("@", 1)[-1]  # never a password that came with it
        raise ConfigError(f"{where}={shown!r} is not a store this server knows: use redis://HOST:PORT/DB "
                          "(or rediss://, unix://), or leave it unset for the embedded store")
    return url


def lease_from_env() -> float:
    """Seconds a replica's claim on a run or a provider slot lasts unless renewed ($FUSION_MCP_LEASE_S)."""
    return seconds_from_env(LEASE_ENV, DEFAULT_LEASE_S, 1, 600)
