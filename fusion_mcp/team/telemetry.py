"""Watching every run and model call of a server: metrics, spans, the audit line, and what a run
spent for the usage ledger and the user's budget (`RunSink`s).

`Telemetry` is the engine's `CallWatcher` (fusion/observe.py), and `wrap` puts a run's work inside a
watch of its own, so the calls a run makes are counted against it (a context variable the run's
tasks inherit) and its span is their parent. Spans follow the OpenTelemetry GenAI semantic
conventions; text a user wrote goes into them only when `content` is on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from ..errors import ProviderError
from ..fusion.events import ProgressCallback
from ..fusion.observe import CallWatch
from ..fusion.result import FusionResult
from .metrics import Metrics

log = logging.getLogger("fusion_mcp")
audit_log = logging.getLogger("fusion_mcp.audit")
Work = Callable[[ProgressCallback], Awaitable[FusionResult]]


@dataclass
class RunTally:
    """One run as the team features see it: who, what, how it ended, and what its calls spent."""

    run_id: str
    kind: str
    ensemble: str
    user: str | None
    started: float = 0.0  # time.time()
    duration_s: float = 0.0
    outcome: str = "failed"  # ok, degraded, failed, cancelled
    answer_source: str = "none"
    calls: int = 0  # model calls sent to a provider (cache hits are free and not counted)
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


_CURRENT: ContextVar[RunTally | None] = ContextVar("fusion_mcp_run_tally", default=None)


class RunSink(Protocol):
    """Told once per run, after it ended (the usage ledger, the user's budget)."""

    async def run_ended(self, tally: RunTally) -> None: ...


def failure_status(exc: BaseException) -> str:
    if isinstance(exc, ProviderError):
        return str(exc.kind)
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return "error"


class Telemetry:
    def __init__(self, metrics: Metrics | None = None, tracer: Any = None, *, content: bool = False,
                 sinks: Sequence[RunSink] = ()) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.content = content
        self.sinks = list(sinks)
        self._said: set[str] = set()  # ledger failures already logged

    def _span(self, name: str, attributes: dict[str, Any], client: bool = False) -> AbstractContextManager[Any]:
        if self.tracer is None:
            return nullcontext()
        from opentelemetry.trace import SpanKind

        return self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
                                                 attributes=attributes)

    @contextmanager
    def watch(self, model: str, role: str) -> Iterator[CallWatch]:
        """The engine's CallWatcher: one model call."""
        watch = CallWatch(model, role)
        provider, _, model_id = model.partition(":")
        status = "ok"
        t0 = time.perf_counter()
        with self._span(f"chat {model_id}", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                                             "gen_ai.request.model": model_id, "fusion.role": role},
                        client=True) as span:
            try:
                yield watch
            except BaseException as exc:
                status = failure_status(exc)
                if span is not None:
                    span.set_attribute("error.type", status)
                raise
            finally:
                self._call_ended(watch, status, time.perf_counter() - t0, span)

    def _call_ended(self, watch: CallWatch, status: str, seconds: float, span: Any) -> None:
        c = watch.completion
        cached = c is not None and c.cached
        tally = _CURRENT.get()
        if tally is not None:
            tally.cache_hits += cached
            tally.calls += not cached
            if c is not None and not cached:
                tally.input_tokens += c.usage.input_tokens or 0
                tally.output_tokens += c.usage.output_tokens or 0
                tally.cost_usd += c.cost_usd or 0.0
        if span is not None and c is not None:
            span.set_attributes({k: v for k, v in {
                "gen_ai.response.model": c.model, "gen_ai.usage.input_tokens": c.usage.input_tokens,
                "gen_ai.usage.output_tokens": c.usage.output_tokens, "fusion.cached": cached,
                "gen_ai.response.finish_reasons": [c.finish_reason] if c.finish_reason else None,
                "fusion.cost_usd": c.cost_usd, "fusion.ttft_s": c.ttft_s}.items() if v is not None})
        m = self.metrics
        if m is None:
            return
        m.calls.labels(watch.model, watch.role, status).inc()
        if cached:
            m.cache_hits.labels(watch.model, watch.role).inc()
            return
        m.call_seconds.labels(watch.model, watch.role).observe(seconds)
        if c is not None:
            if c.ttft_s is not None:
                m.ttft_seconds.labels(watch.model, watch.role).observe(c.ttft_s)
            m.tokens.labels(watch.model, watch.role, "input").inc(c.usage.input_tokens or 0)
            m.tokens.labels(watch.model, watch.role, "output").inc(c.usage.output_tokens or 0)

    def wrap(self, work: Work, *, run_id: str, kind: str, ensemble: str, user: str | None,
             question: str | None = None) -> Work:
        """`work` inside a watch of its own: a span, a tally of its calls, and, once it ends, the
        metrics, the audit line and the sinks."""

        async def watched(on_event: ProgressCallback) -> FusionResult:
            tally = RunTally(run_id, kind, ensemble, user, started=time.time())
            reset = _CURRENT.set(tally)
            if self.metrics is not None:
                self.metrics.in_flight.inc()
            attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "fusion-mcp",
                          "fusion.run_id": run_id, "fusion.kind": kind, "fusion.ensemble": ensemble}
            if self.content and question:
                attributes["gen_ai.input.messages"] = _messages("user", question)
            try:
                with self._span(f"invoke_agent fusion {ensemble}", attributes) as span:
                    try:
                        result = await work(on_event)
                    except BaseException as exc:
                        tally.outcome = "cancelled" if failure_status(exc) == "cancelled" else "failed"
                        raise
                    else:
                        tally.outcome = "degraded" if result.degraded else "ok"
                        tally.answer_source = result.answer_source
                        if self.content and result.answer and span is not None:
                            span.set_attribute("gen_ai.output.messages", _messages("assistant", result.answer))
                        return result
                    finally:
                        tally.duration_s = round(time.time() - tally.started, 3)
                        if span is not None:
                            span.set_attributes({"fusion.outcome": tally.outcome, "fusion.calls": tally.calls,
                                                 "fusion.answer_source": tally.answer_source,
                                                 "gen_ai.usage.input_tokens": tally.input_tokens,
                                                 "gen_ai.usage.output_tokens": tally.output_tokens,
                                                 "fusion.cost_usd": round(tally.cost_usd, 8)})
            finally:
                _CURRENT.reset(reset)
                with anyio.CancelScope(shield=True):
                    await self._run_ended(tally)

        return watched

    async def _run_ended(self, tally: RunTally) -> None:
        if self.metrics is not None:
            self.metrics.in_flight.dec()
            self.metrics.runs.labels(tally.ensemble, tally.outcome, tally.answer_source).inc()
            if tally.cost_usd:
                self.metrics.cost.labels(tally.ensemble).inc(tally.cost_usd)
        audit_log.info(json.dumps({
            "event": "run", "run_id": tally.run_id, "user": tally.user, "kind": tally.kind,
            "ensemble": tally.ensemble, "outcome": tally.outcome, "answer_source": tally.answer_source,
            "calls": tally.calls, "cache_hits": tally.cache_hits, "input_tokens": tally.input_tokens,
            "output_tokens": tally.output_tokens, "cost_usd": round(tally.cost_usd, 8),
            "duration_s": tally.duration_s}, separators=(",", ":")))
        for sink in self.sinks:
            try:
                await sink.run_ended(tally)
            except Exception as exc:  # a ledger that cannot be written must not fail the run
                why, store_fault = _why(exc)  # a store fault is logged once by the store itself (store/outage.py)
                level = logging.DEBUG if store_fault or why in self._said else logging.WARNING
                self._said.add(why)
                log.log(level, "could not record run %s in %s: %s", tally.run_id, type(sink).__name__, why)


def _why(exc: BaseException) -> tuple[str, bool]:
    """One line on a failed ledger write that never names the store's address (a Redis error's text
    does), and whether the store was at fault."""
    try:
        from ..store.outage import describe, store_errors
    except ImportError:  # no redis installed: the ledger is SQLite
        return f"{type(exc).__name__}: {exc}", False
    if isinstance(exc, store_errors()):
        return describe(exc), True
    return f"{type(exc).__name__}: {exc}", False


def _messages(role: str, text: str) -> str:
    """The GenAI conventions' message shape, as a JSON string (span attributes are flat)."""
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])
