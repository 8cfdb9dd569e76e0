"""The call cache: model completions in SQLite, keyed by everything that determines a call.

The key (`call_key`) is a digest of a format version, the provider's name, kind and address, the
model, the messages, the parameters and the sample index; an API key is never part of it, and a
stored completion holds only text, usage, cost and timing. So a rerun of the same dataset answers
every call it already made from disk, and a new strategy or synthesizer re-calls only what changed.
SQLite work runs in a worker thread: a locked database never stalls the event loop (and every draft).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

import anyio.to_thread
from pydantic import ValidationError

from ..errors import ConfigError
from ..providers.base import ChatRequest, Completion
from ..providers.spec import ProviderSpec

CACHE_ENV = "FUSION_MCP_CACHE"
FILE_NAME = "cache.sqlite3"
# Bump when what a stored completion means changes (its parsing, its fields): old rows stop matching.
KEY_VERSION = 2

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
    """A store of completions by `call_key`; the engine's only view of a cache."""

    async def get(self, key: str) -> Completion | None: ...

    async def put(self, key: str, completion: Completion) -> None: ...


def call_key(spec: ProviderSpec, model_id: str, request: ChatRequest, sample: int) -> str:
    """A digest of what determines a model call. It holds no key: only the provider's address."""
    payload = {
        "version": KEY_VERSION,
        "provider": [spec.name, spec.kind, spec.base_url],
        "model": model_id,
        "request": request.model_dump(),
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def default_cache_path() -> Path:
    """FUSION_MCP_CACHE, else $XDG_DATA_HOME/fusion-mcp/cache.sqlite3, else ~/.local/share/fusion-mcp/."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "fusion-mcp" / FILE_NAME


class SQLiteCallCache:
    """A `CallCache` in one SQLite file; safe across runs and processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_cache_path()
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

    async def get(self, key: str) -> Completion | None:
        return await anyio.to_thread.run_sync(self.get_now, key)

    async def put(self, key: str, completion: Completion) -> None:
        await anyio.to_thread.run_sync(self.put_now, key, completion)

    def get_now(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        try:
            completion = Completion.model_validate_json(row[0])
        except ValidationError:  # written by an incompatible version: treat as absent
            self.misses += 1
            return None
        self.hits += 1
        return completion

    def put_now(self, key: str, completion: Completion) -> None:
        data = completion.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, provider, model, completion, created) VALUES (?, ?, ?, ?, ?)",
                (key, completion.provider, completion.model, data, time.time()),
            )
            self._db.commit()

    def count(self) -> int:
        """Stored completions. (Not __len__: an empty cache must still be truthy to the engine.)"""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SQLiteCallCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
