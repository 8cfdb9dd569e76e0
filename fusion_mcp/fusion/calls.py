"""One model call as a run sees it: the cache first, else the provider, with its cost filled in.

This is the one place a completion enters a run, so its text is redacted here, before anything
stores, cuts, logs or returns it.
"""

from __future__ import annotations

import logging

import anyio

from ..config.ensembles import ModelRole
from ..config.pricing import Pricing
from ..errors import ProviderError, ProviderTimeoutError, UpstreamError
from ..providers import ChatRequest, Completion, ProviderPool
from ..providers.base import TextSink
from ..redaction import redact
from ..store.call_cache import CallCache
from .budget import Budget
from .completion_cache import cached_completion, call_key, store_completion
from .observe import ROLE_OF_STAGE, CallWatcher
from .paces import PaceBook
from .reply_cap import MARGIN_CHARS, reply_cap

log = logging.getLogger("fusion_mcp")


class ModelCaller:
    """Calls a role's model through the shared provider pool and the optional call cache, and teaches
    the pace book how fast the model was. A call the upstream does not bill is priced with `pricing`
    (the engine's; default: the shipped table alone)."""

    def __init__(self, providers: ProviderPool, cache: CallCache | None = None, paces: PaceBook | None = None,
                 budget: Budget | None = None, watcher: CallWatcher | None = None,
                 pricing: Pricing | None = None) -> None:
        self.providers = providers
        self.cache = cache
        self.paces = paces if paces is not None else PaceBook(priors={})
        self.budget = budget
        self.watcher = watcher  # metrics, traces, usage (fusion_mcp/team), when a server watches
        self.pricing = pricing if pricing is not None else Pricing()

    def with_budget(self, budget: Budget | None) -> ModelCaller:
        """The same caller (cache, pace book, watcher, prices), checking each call against one run's spending cap."""
        return ModelCaller(self.providers, self.cache, self.paces, budget, self.watcher, self.pricing)

    async def __call__(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int = 0,
                       stage: str = "call", sink: TextSink | None = None) -> Completion:
        if self.watcher is None:
            return await self._budgeted(role, request, timeout_s=timeout_s, sample=sample, stage=stage, sink=sink)
        with self.watcher.watch(role.ref, ROLE_OF_STAGE.get(stage, stage)) as watch:
            watch.completion = await self._budgeted(role, request, timeout_s=timeout_s, sample=sample, stage=stage,
                                                    sink=sink)
            return watch.completion

    async def _budgeted(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int, stage: str,
                        sink: TextSink | None) -> Completion:
        if self.budget is None:
            return await self._call(role, request, timeout_s=timeout_s, sample=sample, stage=stage, sink=sink)
        request = self.budget.capped(role, request)
        reserved = self.budget.reserve(role, request)
        cost: float | None = None  # unknown (a timeout, a cancelled call): it counts at its most
        try:
            completion = await self._call(role, request, timeout_s=timeout_s, sample=sample, stage=stage, sink=sink)
            cost = 0.0 if completion.cached else completion.cost_usd
            return completion
        except ProviderError as exc:
            if not isinstance(exc, ProviderTimeoutError):
                cost = 0.0  # refused outright: not billed
            raise
        finally:
            self.budget.settle(reserved, cost)

    async def _call(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int, stage: str,
                    sink: TextSink | None) -> Completion:
        key = call_key(role.provider, role.model_id, request, sample) if self.cache is not None else ""
        if self.cache is not None:
            try:
                hit = await cached_completion(self.cache, key)
            except Exception as exc:  # a broken cache costs a call, never the answer (nor a traceback)
                log.warning("call cache read failed: %s", redact(f"{type(exc).__name__}: {exc}")[:200])
                hit = None
            if hit is not None:  # redacted again: an entry may predate a key
                hit = hit.model_copy(update={"cached": True, "text": redact(hit.text)})
                if sink is not None:
                    sink.begin()
                    sink.write(hit.text)
                return hit
        cap = reply_cap(role, request)
        sink = sink if sink is not None else TextSink()
        sink.limit = cap + MARGIN_CHARS  # a streaming provider stops reading there
        try:
            completion = await self.providers.get(role.provider).complete(role.model_id, request, timeout_s=timeout_s,
                                                                          sink=sink)
        except ProviderError:
            raise
        except Exception as exc:  # a provider bug must cost one call, not the whole run
            log.error("provider %s raised unexpectedly: %s", role.provider.name, redact(repr(exc)))
            raise UpstreamError(role.provider.name, role.model_id, f"unexpected {type(exc).__name__}: {exc}") from None
        over = len(completion.text) > cap  # whatever the provider: no reply past its cap goes further
        text = await _redacted(completion.text[:cap + MARGIN_CHARS])
        completion = self.pricing.with_cost(completion.model_copy(update={
            "text": text[:cap] if over else text,
            "truncated": completion.truncated or over,
            "citations": [c.model_copy(update={"url": redact(c.url), "title": c.title and redact(c.title)})
                          for c in completion.citations],
        }))
        self.paces.observe(role.ref, stage, completion)
        if self.cache is not None:
            try:
                await store_completion(self.cache, key, completion)
            except Exception as exc:
                log.warning("call cache write failed: %s", redact(f"{type(exc).__name__}: {exc}")[:200])
        return completion


async def _redacted(text: str) -> str:
    """The text redacted; a long one in a worker thread, so that no reply stalls the event loop."""
    if len(text) < 65_536:
        return redact(text)
    return await anyio.to_thread.run_sync(redact, text)
