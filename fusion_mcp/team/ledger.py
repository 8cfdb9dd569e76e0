"""Opening the usage ledger of a store: Redis when the server shares one, else SQLite beside the call cache."""

from __future__ import annotations

from typing import Any

from .usage import RedisUsage, SQLiteUsage, UsageLedger

LEDGER_FILE = "usage.sqlite3"


def embedded_ledger() -> SQLiteUsage:
    from ..config.settings import Settings

    return SQLiteUsage(Settings.from_env().cache_path.parent / LEDGER_FILE)


def ledger_for(client: Any = None, prefix: str = "") -> UsageLedger:
    """The ledger of a Redis store (`client`, its key prefix), or the embedded one."""
    return RedisUsage(client, prefix) if client is not None else embedded_ledger()
