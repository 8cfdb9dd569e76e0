"""Where a server keeps what its replicas share: runs, the call cache, model paces, provider limits.

The default is embedded (this process's memory and files; nothing to install). `serve --store
redis://HOST:PORT/DB` (or $FUSION_MCP_STORE) keeps them in Redis instead, so several replicas behind
a load balancer act as one server: see docs/deploy.md. The Redis client is the `[shared]` extra.
"""

from __future__ import annotations

import os

from ..config.environment import seconds_from_env
from ..errors import ConfigError

STORE_ENV = "FUSION_MCP_STORE"
LEASE_ENV = "FUSION_MCP_LEASE_S"
DEFAULT_LEASE_S = 15.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


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
