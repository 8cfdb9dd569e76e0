"""The fusion engine: the library's front door. One shared HTTP client, the providers, the call cache.

A plain library: no MCP, no HTTP server, no CLI in here.

    async with FusionEngine.from_settings() as engine:   # the ensembles, paces and prices configured
        result = await engine.fuse("Why is the sky blue?", ensemble="budget-trio")

`FusionEngine(registry)` itself reads no environment variable and no file of the user's: what it
needs (the ensembles, a pace book, a cache, where prices come from) is handed in; `from_settings` builds
those from `Settings`. Without `pricing`, calls are priced from the shipped table alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx2 as httpx  # httpx's API; its pool walks every connection per event: see sharded_transport

from ..clock import REAL_CLOCK, Clock
from ..config.criteria import check_call_criteria
from ..config.ensemble_registry import EnsembleRegistry
from ..config.ensembles import Ensemble
from ..config.pricing import Pricing
from ..config.settings import Settings
from ..providers import Provider, ProviderPool
from ..providers.http_client import ensure_open_files
from ..providers.local_runtime import configure as configure_local_runtime
from ..providers.sharded_transport import model_api_client
from ..store.call_cache import CallCache
from ..store.limits import LimitFactory, local_limit
from .budget import check_estimate
from .calls import ModelCaller
from .estimate import estimate_run, estimate_synthesis
from .events import ProgressCallback
from .inputs import check_input
from .observe import CallWatcher
from .paces import PaceBook
from .result import FusionResult
from .run import Run, RunInput

# One pool for every provider, as large as the calls let in flight (ProviderPool's pool slots): each
# provider limits its own calls adaptively, and no call ever waits inside the pool.
POOL_SIZE = 512
OTHER_FILES = 256  # besides the pool: the server's own clients, the cache, logs, the local model
HTTP_LIMITS = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)


class FusionEngine:
    """Runs ensembles. `providers` hands in ready-made providers by name (tests, embedding); `limits`
    builds each provider's limit on calls in flight (shared ones: fusion_mcp/store); `watcher` sees every
    model call (metrics, traces: fusion_mcp/team); `pricing` prices the calls and the spending cap's
    estimates (`Settings.pricing`: your price file, the cached model listings, the shipped table)."""

    def __init__(
        self,
        registry: EnsembleRegistry,
        *,
        client: httpx.AsyncClient | None = None,
        cache: CallCache | None = None,
        providers: Mapping[str, Provider] | None = None,
        paces: PaceBook | None = None,
        limits: LimitFactory = local_limit,
        watcher: CallWatcher | None = None,
        clock: Clock = REAL_CLOCK,
        pricing: Pricing | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self._own_client = client is None
        if self._own_client:
            ensure_open_files(POOL_SIZE + OTHER_FILES)
        self._client = client or model_api_client(HTTP_LIMITS, httpx.Timeout(120.0, connect=10.0))
        self.providers = ProviderPool(self._client, providers, limits,
                                      pool_size=POOL_SIZE if self._own_client else None)
        self.paces = paces if paces is not None else PaceBook()
        self.pricing = pricing if pricing is not None else Pricing()
        self.call = ModelCaller(self.providers, cache, self.paces, watcher=watcher, pricing=self.pricing)
        self.clock = clock  # what runs' time plans read (a fake one in tests)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, registry: EnsembleRegistry | None = None,
                      paces: PaceBook | None = None, pricing: Pricing | None = None, **kwargs: Any) -> FusionEngine:
        """The engine as the command line and the server build it: the settings' price sources, their
        tables checked now (a broken file is a configuration error before any call), the ensembles loaded,
        and the pace book kept beside the call cache (with FUSION_MCP_PACES). `settings` default to the
        environment's, read here once."""
        settings = settings or Settings.from_env()
        pricing = pricing if pricing is not None else settings.pricing
        pricing.check()
        configure_local_runtime(settings.local_runtime)  # the embedded model, if it loads in this process
        if registry is None:
            registry = EnsembleRegistry.load(settings=settings)
        if paces is None:
            paces = PaceBook.beside_cache(settings.cache_path, settings.paces)
        return cls(registry, paces=paces, pricing=pricing, **kwargs)

    async def __aenter__(self) -> FusionEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self.paces.flush()
        finally:
            if self._own_client:
                await self._client.aclose()

    def _ensemble(self, ensemble: str | Ensemble | None) -> Ensemble:
        """The ensemble, with every provider it names built now: a provider that cannot be built
        is a configuration error before any call, not a failed draft."""
        ens = ensemble if isinstance(ensemble, Ensemble) else self.registry.get(ensemble)
        for _, role in ens.roles:
            self.providers.get(role.provider)
        return ens

    def _cascade(self, ens: Ensemble) -> list[Ensemble]:
        """Every ensemble a cascade may escalate to, in order, with its providers built now (the registry
        checked the names and cycles at load; `seen` stops a hand-built Ensemble that loops)."""
        seen, chain = {ens.name}, []
        while ens.escalate_to is not None and ens.escalate_to not in seen:
            seen.add(ens.escalate_to)
            ens = self._ensemble(ens.escalate_to)
            chain.append(ens)
        return chain

    async def fuse(
        self,
        question: str,
        *,
        ensemble: str | Ensemble | None = None,
        context: str | None = None,
        deadline_s: float | None = None,
        on_event: ProgressCallback | None = None,
        synthesize: bool = True,
        run_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
        max_cost_usd: float | None = None,
        criteria: str | None = None,
    ) -> FusionResult:
        """Draft, review and (unless `synthesize` is False) synthesize one answer. `on_text` sees the
        synthesis as it is written. With `max_cost_usd`, a run whose estimate is over it is refused
        (OverBudgetError) before any call. `criteria` (a preset or free text) replaces the ensemble's."""
        check_input(question, context, deadline_s)
        check_call_criteria(criteria)
        ens = self._ensemble(ensemble)
        self._cascade(ens)
        spec = RunInput(ens, question, context, deadline_s or ens.deadline_s, max_cost_usd=max_cost_usd,
                        criteria=criteria)
        if max_cost_usd is not None:
            estimate = estimate_run(ens, question, context, self.pricing, synthesize=synthesize)
            for later in self._cascade(ens) if synthesize else []:  # the worst case: every panel runs
                estimate.calls += estimate_run(later, question, context, self.pricing, synthesize=True).calls
            check_estimate(estimate, max_cost_usd)
            spec.estimated_cost_usd = round(estimate.total_usd, 6)
        if run_id:
            spec.run_id = run_id
        try:
            return await Run(self.call, spec, on_event, on_text, self._ensemble, clock=self.clock).fuse(
                synthesize_answer=synthesize)
        finally:
            await self.paces.save()

    async def synthesize_from(
        self,
        previous: FusionResult,
        *,
        ensemble: str | Ensemble | None = None,
        deadline_s: float | None = None,
        on_event: ProgressCallback | None = None,
        run_id: str | None = None,
        max_cost_usd: float | None = None,
        criteria: str | None = None,
    ) -> FusionResult:
        """Synthesize from an earlier run's drafts and review, without calling the drafters again."""
        check_input(previous.question, previous.context, deadline_s)
        check_call_criteria(criteria)
        ens = self._ensemble(ensemble or previous.ensemble)
        spec = RunInput(ens, previous.question, previous.context, deadline_s or ens.deadline_s,
                        max_cost_usd=max_cost_usd, criteria=criteria or previous.criteria)
        if max_cost_usd is not None:
            estimate = estimate_synthesis(ens, previous.question, previous.context, previous.drafts, previous.analysis,
                                          self.pricing)
            check_estimate(estimate, max_cost_usd)
            spec.estimated_cost_usd = round(estimate.total_usd, 6)
        if run_id:
            spec.run_id = run_id
        try:
            return await Run(self.call, spec, on_event, clock=self.clock).resume(previous)
        finally:
            await self.paces.save()
