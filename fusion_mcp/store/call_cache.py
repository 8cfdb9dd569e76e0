"""The call cache: model completions in SQLite, keyed by everything that determines a call.

The store keeps text by key: the engine (fusion/calls.py) makes the key (`call_key`, a digest that
never holds an API key) and stores a completion as JSON (text, usage, cost and timing only). So a rerun
of the same dataset answers every call it already made from disk, and a new strategy or synthesizer
re-calls only what changed. SQLite work runs in a worker thread: a locked database never stalls the
event loop (and every draft).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from ..errors import ConfigError

CACHE_ENV = "FUSION_MCP_CACHE"  # named in errors; read by config/settings.py
FILE_NAME = "cache.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class CallCache(Protocol):
    """Stored completions (JSON text) by key; the engine's only view of a cache. `hits` and `misses`
    count lookups; the engine counts a stored value it cannot read as a miss (`unreadable`)."""

    hits: int
    misses: int

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, *, provider: str = "", model: str = "") -> None: ...

    def unreadable(self) -> None: ...


class SQLiteCallCache:
    """A `CallCache` in one SQLite file; safe across runs and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the call cache: {exc} (set {CACHE_ENV} or --cache to another file, or use --no-cache)",
                file=str(self.path),
            ) from None

    async def get(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self.get_now, key)

    async def put(self, key: str, value: str, *, provider: str = "", model: str = "") -> None:
        await anyio.to_thread.run_sync(self.put_now, key, value, provider, model)

    def get_now(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return str(row[0])

    def put_now(self, key: str, value: str, provider: str = "", model: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, provider, model, completion, created) VALUES (?, ?, ?, ?, ?)",
                (key, provider, model, value, time.time()),
            )
            self._db.commit()

    def unreadable(self) -> None:
        """A value just found was written by an incompatible version: count it as the miss it is."""
        self.hits -= 1
        self.misses += 1

    def count(self) -> int:
        """Stored completions. (Not __len__: an empty cache must still be truthy to the engine.)"""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteCallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
