"""Per-user daily budgets: a run is admitted only if its estimate fits what the user has left today.

The same reserve-then-settle accounting as a run's spending cap (fusion/budget.py), across replicas:
admitting a run reserves its estimated most; when it ends, the usage ledger adds what its calls
reported costing and the reservation is released. Spent today (UTC) is the ledger's; reservations in
flight live beside it (Redis: a hash per user and day, checked and written in one Lua step so two
replicas cannot both take the last dollar; a reservation lapses by itself after its run's deadline,
so a replica that dies leaks nothing for long).
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.pricing import format_cost
from ..errors import ConfigError, FusionError
from .telemetry import RunTally
from .usage import UsageLedger, today

_RESERVE = """
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local amount, expiry = string.match(entries[i + 1], '([^|]+)|([^|]+)')
  if tonumber(expiry) < now then redis.call('HDEL', KEYS[1], entries[i]) else held = held + tonumber(amount) end
end
local spent = tonumber(redis.call('HGET', KEYS[2], 'cost_usd') or '0')
if spent + held + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return {0, tostring(spent), tostring(held)}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. tostring(now + tonumber(ARGV[4])))
redis.call('EXPIRE', KEYS[1], 172800)
return {1, tostring(spent), tostring(held)}
"""


class UserBudgetError(FusionError):
    """A run refused before any call: its estimate would pass what the user has left today."""


@dataclass
class BudgetLimits:
    """The daily limit of each user: `default_usd` unless the overrides file names them."""

    default_usd: float | None = None
    users: dict[str, float] = field(default_factory=dict)

    def limit(self, user: str) -> float | None:
        return self.users.get(user, self.default_usd)

    @classmethod
    def load(cls, default_usd: float | None, path: str | None) -> BudgetLimits:
        """From `--user-budget-usd` and a TOML file: `default_usd = 5` and a `[users]` table of
        user = dollars (a user is their token's `sub`). Errors name the file and the key."""
        limits = cls(default_usd=default_usd)
        if not path:
            return limits
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the user budgets file {path}: {exc}", file=path) from None
        for key, value in [("default_usd", data.get("default_usd")), *(
                (f"users.{u}", v) for u, v in (data.get("users") or {}).items())]:
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{path}: {key} must be a number of US dollars, 0 or more (got {value!r})",
                                  file=path, key=key)
        unknown = set(data) - {"default_usd", "users"}
        if unknown:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}; expected default_usd and [users]",
                              file=path, key=sorted(unknown)[0])
        if data.get("default_usd") is not None:
            limits.default_usd = float(data["default_usd"])
        limits.users = {str(u): float(v) for u, v in (data.get("users") or {}).items()}
        return limits


class UserBudgets:
    """Admission against the daily limits; a RunSink that releases each reservation when its run ends."""

    def __init__(self, limits: BudgetLimits, ledger: UsageLedger, client: Any = None, prefix: str = "") -> None:
        self.limits = limits
        self.ledger = ledger
        self.client = client  # Redis, or None: this process's reservations
        self.prefix = prefix
        self._script = client.register_script(_RESERVE) if client is not None else None
        self._local: dict[tuple[str, str], dict[str, float]] = {}
        self._held: dict[str, tuple[str, str]] = {}  # run_id -> (user, day) it reserved on

    async def admit(self, user: str, run_id: str, estimate_usd: float, ttl_s: float) -> None:
        """Reserve `estimate_usd` for `run_id`, or raise UserBudgetError with the numbers."""
        limit = self.limits.limit(user)
        if limit is None:
            return
        day = today()
        if self._script is not None:
            ok, spent, held = await self._script(
                keys=[f"{self.prefix}:budget:{day}:{user}", f"{self.prefix}:usage:{day}:{user}"],
                args=[run_id, repr(estimate_usd), repr(limit), repr(ttl_s)])
            ok, spent, held = int(ok), float(spent), float(held)
        else:
            spent = await self.ledger.spent(user, day)
            mine = self._local.setdefault((user, day), {})
            held = sum(mine.values())
            ok = spent + held + estimate_usd <= limit
            if ok:
                mine[run_id] = estimate_usd
        if not ok:
            left = max(0.0, limit - spent - held)
            raise UserBudgetError(
                f"this run could cost up to {format_cost(estimate_usd)}, more than the {format_cost(left)} left of "
                f"your daily budget of {format_cost(limit)} ({format_cost(spent)} spent today and "
                f"{format_cost(held)} held by runs in flight; days are UTC). Nothing was sent: pick a cheaper "
                "ensemble or models, wait for your runs in flight, or ask for a larger budget")
        self._held[run_id] = (user, day)

    async def release(self, run_id: str) -> None:
        held = self._held.pop(run_id, None)
        if held is None:
            return
        user, day = held
        if self.client is not None:
            await self.client.hdel(f"{self.prefix}:budget:{day}:{user}", run_id)
        else:
            self._local.get((user, day), {}).pop(run_id, None)

    async def run_ended(self, tally: RunTally) -> None:
        await self.release(tally.run_id)

    async def status(self, user: str) -> dict[str, Any] | None:
        """The user's limit, spent and left today, for `usage://me`; None without a limit."""
        limit = self.limits.limit(user)
        if limit is None:
            return None
        spent = await self.ledger.spent(user, today())
        return {"daily_limit_usd": limit, "spent_today_usd": round(spent, 6),
                "left_today_usd": round(max(0.0, limit - spent), 6), "day": today(), "checked_at": time.time()}
