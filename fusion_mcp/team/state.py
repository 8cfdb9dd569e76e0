"""What a server keeps for its users: the telemetry that watches every run, the usage ledger and the
budgets (in the server's store), whether users sign in, and the two checks every surface makes:
may this caller see that run (`may_see`), may this user start this run (`admit`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..fusion.estimate import Estimate
from .budgets import BudgetLimits, UserBudgetError, UserBudgets
from .identity import may_read
from .ledger import ledger_for
from .telemetry import Telemetry
from .usage import UsageLedger, usage_report

USAGE_DAYS = 30
RESERVATION_GRACE_S = 120.0  # a reservation outlives its run's deadline by this much, then lapses


class TeamState:
    def __init__(self, telemetry: Telemetry | None = None, *, signs_in: bool = False,
                 budget_limits: BudgetLimits | None = None) -> None:
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.signs_in = signs_in
        self.budget_limits = budget_limits
        self.usage: UsageLedger | None = None
        self.budgets: UserBudgets | None = None

    def open(self, cache_path: Path, client: Any = None, prefix: str = "") -> None:
        """The ledger and budgets in the store the server opened: Redis (`client`, its key prefix), or
        embedded beside the call cache (`cache_path`, from the settings)."""
        self.usage = ledger_for(cache_path, client, prefix)
        if self.budget_limits is not None:
            self.budgets = UserBudgets(self.budget_limits, self.usage, client, prefix)
        self.telemetry.sinks = [s for s in (self.usage, self.budgets) if s is not None]  # ledger first: then release

    async def aclose(self) -> None:
        """The ledger's connection, when the server stops or drops its store."""
        if self.usage is not None:
            await self.usage.aclose()

    def may_see(self, owner: str | None, token: Any) -> bool:
        """Whether the caller (its verified token, or None) may see a run `owner` started."""
        if self.signs_in and token is None:
            return False  # a server that signs users in never answers an anonymous caller
        return may_read(owner, token)

    async def admit(self, user: str | None, run_id: str, estimate: Callable[[], Estimate], deadline_s: float,
                    max_cost_usd: float | None) -> float | None:
        """Reserve the run's most against `user`'s budget for today (UserBudgetError, with the numbers, when
        it does not fit); the spending cap the run must then run under, so it cannot spend past it."""
        if self.budgets is None or user is None or self.budgets.limits.limit(user) is None:
            return max_cost_usd
        most = estimate()
        if most.unpriced:
            raise UserBudgetError(
                f"your daily budget cannot bound this run: no price is known for {', '.join(most.unpriced)}. Pick "
                "priced models (list_models shows prices), or ask the server's operator to add a price")
        await self.budgets.admit(user, run_id, most.total_usd, ttl_s=deadline_s + RESERVATION_GRACE_S)
        if most.total_usd <= 0:
            return max_cost_usd
        return most.total_usd if max_cost_usd is None else min(most.total_usd, max_cost_usd)

    async def release(self, run_id: str) -> None:
        """A reservation whose run never started (the server was too busy)."""
        if self.budgets is not None:
            await self.budgets.release(run_id)

    async def usage_of(self, user: str) -> dict[str, Any]:
        """The user's last USAGE_DAYS days and their budget today, as `usage://me` shows them."""
        since = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=USAGE_DAYS - 1)).isoformat()
        rows = await self.usage.rows(user, since) if self.usage is not None else []
        budget = await self.budgets.status(user) if self.budgets is not None else None
        return {"user": user, "since": since, **usage_report(rows), "budget": budget}
