"""The usage ledger: per user, per day (UTC) and per ensemble, the runs, model calls, tokens and cost.

Written once per run when it ends (a `RunSink`), read by `fusion-mcp usage`, the `usage://me`
resource and the per-user budgets (what a user spent today). Two homes, as for the rest of the store:
SQLite beside the call cache (`usage.sqlite3`, embedded) or Redis (a hash per user and day,
`{prefix}:usage:{day}:{user}`, kept USAGE_KEEP_DAYS, with the day's users in `{prefix}:usage-users:{day}`).
Users without a sign-in are recorded as ANONYMOUS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections import defaultdict
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from .telemetry import RunTally

ANONYMOUS = "anonymous"
USAGE_KEEP_DAYS = 400
FIELDS = ("runs", "calls", "input_tokens", "output_tokens", "cost_usd")


class UsageRow(BaseModel):
    day: str  # YYYY-MM-DD, UTC
    user: str
    ensemble: str
    runs: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def days_since(since: str) -> list[str]:
    """Every day from `since` to today, UTC (at most USAGE_KEEP_DAYS)."""
    first, last = dt.date.fromisoformat(since), dt.date.fromisoformat(today())
    count = min((last - first).days + 1, USAGE_KEEP_DAYS)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(max(count, 0))]


class UsageLedger(Protocol):
    async def run_ended(self, tally: RunTally) -> None: ...

    async def spent(self, user: str, day: str) -> float: ...

    async def rows(self, user: str | None, since: str) -> list[UsageRow]: ...

    async def aclose(self) -> None: ...


class SQLiteUsage:
    """The embedded ledger: one small table, written off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[tuple[str, str, str], list[float]] = {}
        self._flushing = asyncio.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection for the writes, made once (they take turns under _flushing). Write-ahead log,
        # synced at checkpoints rather than at every commit: a write per burst of runs was a sync to
        # disk each, and most of a run's CPU on a VM. A crash of the process loses nothing; a crash of
        # the machine may lose the last moments' rows.
        # Opened at the first write: reading the ledger (`fusion-mcp usage`) leaves its journal mode alone.
        self._writer: sqlite3.Connection | None = None
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS usage (day TEXT, user TEXT, ensemble TEXT, runs INTEGER, "
                       "calls INTEGER, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, "
                       "PRIMARY KEY (day, user, ensemble))")

    def _writing(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._writer.execute("PRAGMA journal_mode=WAL")
            self._writer.execute("PRAGMA synchronous=NORMAL")
        return self._writer

    async def aclose(self) -> None:
        """The writer connection, closed when the server stops (after the write under way, if any)."""
        async with self._flushing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    async def run_ended(self, tally: RunTally) -> None:
        """Add the run to the ledger; on return it is written. Runs that end together are written in
        one transaction (one connection, one commit), not one each: that was most of a run's CPU."""
        row = self._pending.setdefault((today(), tally.user or ANONYMOUS, tally.ensemble), [0, 0, 0, 0, 0.0])
        for i, value in enumerate((1, tally.calls, tally.input_tokens, tally.output_tokens, tally.cost_usd)):
            row[i] += value
        await self._flush()

    async def _flush(self) -> None:
        async with self._flushing:  # a run whose row an earlier write took finds nothing left to write
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: dict[tuple[str, str, str], list[float]]) -> None:
        with self._writing() as db:  # one transaction: committed on leaving
            db.executemany("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, user, ensemble) DO "
                           "UPDATE SET runs = runs + excluded.runs, calls = calls + excluded.calls, "
                           "input_tokens = input_tokens + excluded.input_tokens, "
                           "output_tokens = output_tokens + excluded.output_tokens, "
                           "cost_usd = cost_usd + excluded.cost_usd", [(*key, *row) for key, row in batch.items()])

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with closing(self._connect()) as db, db:
            return db.execute(sql, args).fetchall()

    async def spent(self, user: str, day: str) -> float:
        rows = await asyncio.to_thread(self._read, "SELECT SUM(cost_usd) FROM usage WHERE day = ? AND user = ?",
                                       (day, user))
        return float(rows[0][0] or 0.0)

    async def rows(self, user: str | None, since: str) -> list[UsageRow]:
        sql = f"SELECT day, user, ensemble, {', '.join(FIELDS)} FROM usage WHERE day >= ?"
        args: tuple[Any, ...] = (since,)
        if user is not None:
            sql, args = sql + " AND user = ?", (since, user)
        found = await asyncio.to_thread(self._read, sql + " ORDER BY day, user, ensemble", args)
        return [UsageRow(day=r[0], user=r[1], ensemble=r[2], runs=r[3], calls=r[4], input_tokens=r[5],
                         output_tokens=r[6], cost_usd=r[7]) for r in found]


class RedisUsage:
    """The ledger every replica sharing a Redis store writes: HINCRBY per field, one round trip."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def aclose(self) -> None:
        return None  # the client is the store's, which closes it

    def key(self, day: str, user: str) -> str:
        return f"{self.prefix}:usage:{day}:{user}"

    async def run_ended(self, tally: RunTally) -> None:
        day, user = today(), tally.user or ANONYMOUS
        key, users = self.key(day, user), f"{self.prefix}:usage-users:{day}"
        keep = USAGE_KEEP_DAYS * 86400
        async with self.client.pipeline(transaction=True) as pipe:
            for name, value in (("runs", 1), ("calls", tally.calls), ("input_tokens", tally.input_tokens),
                                ("output_tokens", tally.output_tokens)):
                pipe.hincrby(key, f"{tally.ensemble}|{name}", value)
            pipe.hincrbyfloat(key, f"{tally.ensemble}|cost_usd", tally.cost_usd)
            pipe.hincrbyfloat(key, "cost_usd", tally.cost_usd)  # the day's total: what budgets read
            pipe.expire(key, keep)
            pipe.sadd(users, user)
            pipe.expire(users, keep)
            await pipe.execute()

    async def spent(self, user: str, day: str) -> float:
        return float(await self.client.hget(self.key(day, user), "cost_usd") or 0.0)

    async def rows(self, user: str | None, since: str) -> list[UsageRow]:
        out: list[UsageRow] = []
        for day in days_since(since):
            listed = f"{self.prefix}:usage-users:{day}"
            users = [user] if user is not None else sorted(await self.client.smembers(listed))
            for who in users:
                fields = await self.client.hgetall(self.key(day, who))
                by_ensemble: dict[str, dict[str, Any]] = defaultdict(dict)
                for field, value in fields.items():
                    ensemble, sep, name = field.rpartition("|")
                    if sep and name in FIELDS:
                        by_ensemble[ensemble][name] = float(value) if name == "cost_usd" else int(value)
                out += [UsageRow(day=day, user=who, ensemble=e, **v) for e, v in sorted(by_ensemble.items())]
        return out


def usage_report(rows: list[UsageRow]) -> dict[str, Any]:
    """Totals and per-day, per-ensemble rows, as `usage://me` and `usage --json` show them."""
    total = {name: sum(getattr(r, name) for r in rows) for name in FIELDS}
    total["cost_usd"] = round(total["cost_usd"], 6)
    return {"total": total, "rows": [r.model_dump() for r in rows]}
