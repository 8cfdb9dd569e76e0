"""The fusion engine: the library's front door. One shared HTTP client, the providers, the call cache.

A plain library: no MCP, no HTTP server, no CLI in here.

    async with FusionEngine() as engine:
        result = await engine.fuse("Why is the sky blue?", ensemble="budget-trio")
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2 as httpx  # httpx's API; measured by bench/load.py: httpx's pool costs O(connections²) per event

from ..config.ensembles import Ensemble, EnsembleRegistry
from ..config.pricing import check_price_table
from ..providers import Provider, ProviderPool
from .call_cache import CallCache
from .calls import ModelCaller
from .events import ProgressCallback
from .inputs import check_input
from .result import FusionResult
from .run import Run, RunInput

# One pool for every provider, as large as the calls let in flight (ProviderPool's pool slots): each
# provider limits its own calls adaptively, and no call ever waits inside the pool.
POOL_SIZE = 256
HTTP_LIMITS = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)


class FusionEngine:
    """Runs ensembles. `providers` hands in ready-made providers by name (tests, embedding)."""

    def __init__(
        self,
        registry: EnsembleRegistry | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        cache: CallCache | None = None,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        check_price_table()  # a broken price file is a configuration error now, not mid-run
        self.registry = registry if registry is not None else EnsembleRegistry.load()
        self.cache = cache
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0), limits=HTTP_LIMITS)
        self.providers = ProviderPool(self._client, providers, pool_size=POOL_SIZE if self._own_client else None)
        self.call = ModelCaller(self.providers, cache)

    async def __aenter__(self) -> "FusionEngine":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def _ensemble(self, ensemble: str | Ensemble | None) -> Ensemble:
        return ensemble if isinstance(ensemble, Ensemble) else self.registry.get(ensemble)

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
    ) -> FusionResult:
        """Draft, review and (unless `synthesize` is False) synthesize one answer."""
        check_input(question, context, deadline_s)
        ens = self._ensemble(ensemble)
        spec = RunInput(ens, question, context, deadline_s or ens.deadline_s)
        if run_id:
            spec.run_id = run_id
        return await Run(self.call, spec, on_event).fuse(synthesize_answer=synthesize)

    async def synthesize_from(
        self,
        previous: FusionResult,
        *,
        ensemble: str | Ensemble | None = None,
        deadline_s: float | None = None,
        on_event: ProgressCallback | None = None,
    ) -> FusionResult:
        """Synthesize from an earlier run's drafts and review, without calling the drafters again."""
        check_input(previous.question, previous.context, deadline_s)
        ens = self._ensemble(ensemble or previous.ensemble)
        spec = RunInput(ens, previous.question, previous.context, deadline_s or ens.deadline_s)
        return await Run(self.call, spec, on_event).resume(previous)
