"""Opening the usage ledger of a store: Redis when the server shares one, else SQLite beside the call cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .usage import RedisUsage, SQLiteUsage, UsageLedger

LEDGER_FILE = "usage.sqlite3"


def ledger_for(cache_path: Path, client: Any = None, prefix: str = "") -> UsageLedger:
    """The ledger of a Redis store (`client`, its key prefix), or the embedded one beside the call
    cache (`cache_path`: the settings' `cache_path`)."""
    return RedisUsage(client, prefix) if client is not None else SQLiteUsage(cache_path.parent / LEDGER_FILE)
