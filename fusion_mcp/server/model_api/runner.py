"""One fusion run asked for through the model API, on the server's own engine, limits and run store.

Everything that can be refused is refused before the run starts (and so before a stream's first
byte): the model id, the ensemble's readiness and models (the tools' own checks and wording), the
input, the spending cap's estimate. The run itself is an ordinary background run (`kind`
fused_answer) of the signed-in user (with OAuth), admitted against their daily budget, watched like a
tool's (metrics, traces, audit, usage), so `get_run` and `run://` see it, on this replica and, with a
shared store, on every one; `--max-running` counts it like any other.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable

from mcp.server.mcpserver.exceptions import ToolError

from ...config.criteria import check_call_criteria
from ...config.ensembles import Ensemble
from ...errors import FusionError, InputError, NoDraftsError
from ...fusion.budget import OverBudgetError, check_estimate
from ...fusion.estimate import Estimate, estimate_run
from ...fusion.events import ProgressCallback
from ...fusion.inputs import check_input
from ...fusion.result import FusionResult
from ..background import Handle, TooManyRunsError
from ..choice import chosen_ensemble
from ..service import FusionService
from .asks import Ask
from .errors import ApiError, invalid
from .feed import TextFeed
from .models import ensemble_name


class ApiRun:
    def __init__(self, service: FusionService, ask: Ask, owner: str | None = None) -> None:
        self.service = service
        self.ask = ask
        self.owner = owner
        self.cap: float | None = ask.options.max_cost_usd  # the spending cap the run runs under
        self.run_id = uuid.uuid4().hex[:12]
        self.created = int(time.time())
        self.feed = TextFeed()
        self.failure: FusionError | None = None
        self.ensemble: Ensemble | None = None
        self.estimate: Estimate | None = None
        self.deadline_s = 0.0

    def prepare(self) -> Ensemble:
        """The ensemble this request runs, with its per-call models and synthesizer settings, or an ApiError."""
        ask, opts = self.ask, self.ask.options
        name = ensemble_name(ask.model, self.service.registry)
        try:
            ens = chosen_ensemble(self.service, name, drafters=opts.drafters, reviewer=opts.reviewer,
                                  synthesizer=opts.synthesizer)
        except ToolError as exc:
            chose = opts.drafters or opts.reviewer or opts.synthesizer
            raise invalid(str(exc), "fusion" if chose else "model") from None
        if ens.synthesizer is not None and (ask.max_tokens is not None or ask.temperature is not None):
            synth = ens.synthesizer
            ens = dataclasses.replace(ens, synthesizer=dataclasses.replace(
                synth, max_tokens=ask.max_tokens if ask.max_tokens is not None else synth.max_tokens,
                temperature=ask.temperature if ask.temperature is not None else synth.temperature))
        self.deadline_s = opts.deadline_s or ens.deadline_s
        try:
            check_input(ask.question, ask.context, self.deadline_s)
            check_call_criteria(opts.criteria)
            self.estimate = estimate_run(ens, ask.question, ask.context, self.service.pricing, synthesize=True)
            if opts.max_cost_usd is not None:
                check_estimate(self.estimate, opts.max_cost_usd)
        except InputError as exc:
            raise invalid(str(exc)) from None
        except OverBudgetError as exc:
            raise ApiError(400, str(exc), param="fusion.max_cost_usd", code="over_budget") from None
        self.ensemble = ens
        return ens

    def _work(self, on_event: ProgressCallback) -> Awaitable[FusionResult]:
        async def work() -> FusionResult:
            try:
                return await self.service.engine.fuse(
                    self.ask.question, ensemble=self.ensemble, context=self.ask.context, deadline_s=self.deadline_s,
                    on_event=on_event, run_id=self.run_id, on_text=self.feed.write if self.ask.stream else None,
                    max_cost_usd=self.cap, criteria=self.ask.options.criteria)
            except FusionError as exc:
                self.failure = exc
                raise
            finally:
                self.feed.close()

        return work()

    async def start(self) -> Handle:
        """Start the run in the server's task group; a burst beyond --max-running queues for up to half
        the tool-time limit, then gets a 429 (worth retrying)."""
        ens = self.ensemble if self.ensemble is not None else self.prepare()
        estimate = self.estimate if self.estimate is not None else estimate_run(ens, self.ask.question,
                                                                                 self.ask.context, self.service.pricing)
        try:  # the user's daily budget (with OAuth and --user-budget-usd): over it, nothing is sent
            self.cap = await self.service.admit(self.owner, self.run_id, lambda: estimate, self.deadline_s,
                                                self.ask.options.max_cost_usd)
        except ToolError as exc:
            raise ApiError(429, str(exc), "rate_limit_error", code="insufficient_quota") from None
        try:
            return await self.service.launch(self.run_id, "fused_answer", ens.name, False, self.deadline_s,
                                             self._work, owner=self.owner, question=self.ask.question)
        except TooManyRunsError as exc:
            raise ApiError(429, str(exc), "rate_limit_error", code="too_many_runs", retry=True) from None
        except FusionError as exc:  # shutting down
            raise ApiError(503, str(exc), "api_error", code="shutting_down", retry=True) from None

    def error_of(self, handle: Handle) -> ApiError:
        """The error for a run that ended without a result, with the tools' message."""
        message = handle.error or "the run ended without an answer"
        if isinstance(self.failure, NoDraftsError):
            return ApiError(502, message, "api_error", code="all_drafts_failed")
        if isinstance(self.failure, (OverBudgetError, InputError)):
            return ApiError(400, message, code="invalid_request")
        if self.failure is None and handle.elapsed_s() >= handle.deadline_s:
            return ApiError(504, message, "timeout_error", code="deadline")
        return ApiError(500, message, "api_error", code="run_failed")
