"""The fusion engine: one shared HTTP client, the providers, and the draft → review → synthesis run.

A plain library: no MCP, no HTTP server, no CLI in here.

    async with FusionEngine() as engine:
        result = await engine.fuse("Why is the sky blue?", ensemble="budget-trio")
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import string
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import anyio
import httpx

from .ensembles import Ensemble, EnsembleRegistry, ModelRole
from .errors import NoDraftsError, ProviderError, UpstreamError
from .fusion.delimit import wrap_draft
from .fusion.events import ProgressCallback, ProgressEvent
from .fusion.result import CriticalStep, Draft, FusionResult, Scores, Stage, Totals
from .fusion.review import ReviewParseError, agreement_scores, parse_review, review_schema
from .pricing import check_price_table, with_cost
from .prompts import context_block, render
from .providers import ChatRequest, Completion, Message, Provider, ProviderSpec, build_provider
from .providers.resilience import ResilientProvider

log = logging.getLogger("fusion_mcp")

# How a run's deadline is shared out. Drafting may use DRAFT_SHARE of it once the quorum is in,
# and waits up to QUORUM_SHARE for a quorum that is late; the review then gets REVIEW_SHARE of
# what is left, and the synthesis the rest.
DRAFT_SHARE = 0.55
QUORUM_SHARE = 0.75
REVIEW_SHARE = 0.4
MIN_STAGE_S = 0.5
REVIEW_WEIGHT, AGREEMENT_WEIGHT = 0.8, 0.2


class CallCache(Protocol):
    """A store of completions keyed by everything that determines a call (see `call_key`)."""

    def get(self, key: str) -> Completion | None: ...

    def put(self, key: str, completion: Completion) -> None: ...


def call_key(spec: ProviderSpec, model_id: str, request: ChatRequest, sample: int) -> str:
    """A digest of what determines a model call. It holds no key: only the provider's address."""
    payload = {
        "provider": [spec.name, spec.kind, spec.base_url],
        "model": model_id,
        "request": request.model_dump(),
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class FusionEngine:
    def __init__(
        self,
        registry: EnsembleRegistry | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        cache: CallCache | None = None,
    ) -> None:
        check_price_table()  # a broken price file is a configuration error now, not mid-run
        self.registry = registry if registry is not None else EnsembleRegistry.load()
        self.cache = cache
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._providers: dict[ProviderSpec, Provider] = {}

    async def __aenter__(self) -> "FusionEngine":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # -- model calls -------------------------------------------------------------------------

    def provider(self, spec: ProviderSpec) -> Provider:
        """One wrapped provider per spec, so its concurrency limit is shared by every run."""
        if spec not in self._providers:
            self._providers[spec] = ResilientProvider(
                build_provider(spec, self._client),
                max_retries=spec.max_retries,
                max_concurrency=spec.max_concurrency,
                timeout_s=spec.timeout_s,
            )
        return self._providers[spec]

    async def call(self, role: ModelRole, request: ChatRequest, *, timeout_s: float, sample: int = 0) -> Completion:
        """One model call: from the cache when it has it, else upstream, with its cost filled in."""
        key = call_key(role.provider, role.model_id, request, sample) if self.cache else ""
        if self.cache:
            try:
                hit = self.cache.get(key)
            except Exception:  # a broken cache costs a call, never the answer
                log.exception("call cache read failed")
                hit = None
            if hit is not None:
                return hit.model_copy(update={"cached": True})
        try:
            completion = await self.provider(role.provider).complete(role.model_id, request, timeout_s=timeout_s)
        except ProviderError:
            raise
        except Exception as exc:  # a provider bug must cost one call, not the whole run
            log.exception("provider %s raised unexpectedly", role.provider.name)
            raise UpstreamError(role.provider.name, role.model_id, f"unexpected {type(exc).__name__}: {exc}") from exc
        completion = with_cost(completion)
        if self.cache:
            try:
                self.cache.put(key, completion)
            except Exception:
                log.exception("call cache write failed")
        return completion

    # -- runs --------------------------------------------------------------------------------

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
        ens = ensemble if isinstance(ensemble, Ensemble) else self.registry.get(ensemble)
        run = _Run(self, ens, question, context, deadline_s or ens.deadline_s, on_event, run_id)
        return await run.execute(synthesize=synthesize)

    async def synthesize_from(
        self,
        previous: FusionResult,
        *,
        ensemble: str | Ensemble | None = None,
        deadline_s: float | None = None,
        on_event: ProgressCallback | None = None,
    ) -> FusionResult:
        """Synthesize from an earlier run's drafts and review, without calling the drafters again."""
        ens = ensemble if isinstance(ensemble, Ensemble) else self.registry.get(ensemble or previous.ensemble)
        run = _Run(self, ens, previous.question, previous.context, deadline_s or ens.deadline_s, on_event, None)
        return await run.resume(previous)


class _Run:
    """The state of one fusion run; lives for one call of `fuse`."""

    def __init__(
        self,
        engine: FusionEngine,
        ensemble: Ensemble,
        question: str,
        context: str | None,
        deadline_s: float,
        on_event: ProgressCallback | None,
        run_id: str | None,
    ) -> None:
        self.engine = engine
        self.ensemble = ensemble
        self.question = question
        self.context = context
        self.deadline_s = deadline_s
        self.on_event = on_event
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.rng = random.Random(self.run_id)
        self.started = anyio.current_time()
        self.wall_started = time.perf_counter()
        self.deadline_at = self.started + deadline_s
        self.total_steps = len(ensemble.drafters) + 2
        self.done_steps = 0
        self.degraded: list[str] = []

    def _nonce(self, stage: str) -> str:
        """The delimiter marker, fixed by the run id so that a rerun with the same id builds the same
        prompts (and hits the call cache). Knowing it gains a draft nothing: wrap_draft strips it."""
        return hashlib.sha256(f"{self.run_id}/{stage}".encode()).hexdigest()[:12]

    def _left(self, until: float) -> float:
        return until - anyio.current_time()

    async def _emit(self, event: ProgressEvent) -> None:
        if self.on_event is None:
            return
        try:
            await self.on_event(event)
        except Exception:  # a broken progress consumer must not break the run
            log.exception("progress callback failed")

    async def _step(self, stage: str, message: str, **extra: object) -> None:
        self.done_steps += 1
        await self._emit(
            ProgressEvent(stage=stage, done=self.done_steps, total=self.total_steps, message=message, **extra)  # type: ignore[arg-type]
        )

    # -- drafting ----------------------------------------------------------------------------

    def _draft_request(self, role: ModelRole) -> ChatRequest:
        user = render("draft_user", context_block=context_block(self.context), question=self.question)
        return ChatRequest(
            messages=[Message(role="system", content=render("draft_system")), Message(role="user", content=user)],
            temperature=role.temperature,
            max_tokens=role.max_tokens,
            seed=role.seed,
        )

    async def _draft(self) -> list[Draft]:
        drafters = self.ensemble.drafters
        letters = list(string.ascii_uppercase[: len(drafters)]) if len(drafters) <= 26 else [
            f"D{i + 1}" for i in range(len(drafters))
        ]
        self.rng.shuffle(letters)  # anonymous labels, in an order unrelated to the file's
        drafts: list[Draft | None] = [None] * len(drafters)
        changed = [anyio.Event()]
        reported = [0]  # drafts whose progress event has gone out
        budget_at = self.started + self.deadline_s * DRAFT_SHARE
        quorum_at = self.started + self.deadline_s * QUORUM_SHARE

        async def one(i: int, role: ModelRole) -> None:
            t0 = time.perf_counter()
            try:
                c = await self.engine.call(
                    role, self._draft_request(role), timeout_s=max(0.01, self._left(quorum_at)), sample=i
                )
                drafts[i] = Draft(
                    label=letters[i], model=role.ref, status="ok", text=c.text, configured_weight=role.weight,
                    latency_s=round(c.latency_s, 3), input_tokens=c.usage.input_tokens,
                    output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached,
                )
            except ProviderError as exc:
                drafts[i] = Draft(
                    label=letters[i], model=role.ref, status=exc.kind, error=exc.reason,  # type: ignore[arg-type]
                    configured_weight=role.weight, latency_s=round(time.perf_counter() - t0, 3),
                    cost_usd=_cost_of_failure(role),
                )
            d = drafts[i]
            assert d is not None
            # Report before waking the waiter, and count a draft as finished only once reported:
            # the waiter cancels this task group when all are finished, which would otherwise drop
            # a progress notification still being sent.
            await self._step("draft", f"draft {d.label} ({d.model}): {d.status}", model=d.model,
                             status=d.status, latency_s=d.latency_s)
            reported[0] += 1
            changed[0].set()

        def finished() -> bool:
            return reported[0] == len(drafters)

        def quorum() -> bool:
            return sum(1 for d in drafts if d is not None and d.status == "ok") >= self.ensemble.min_drafts

        async def wait_until(condition: Callable[[], bool], until: float) -> None:
            while not condition() and self._left(until) > 0:
                changed[0] = anyio.Event()
                with anyio.move_on_after(self._left(until)):
                    await changed[0].wait()

        async with anyio.create_task_group() as tg:
            for i, role in enumerate(drafters):
                tg.start_soon(one, i, role)
            await wait_until(finished, budget_at)
            await wait_until(lambda: finished() or quorum(), quorum_at)
            tg.cancel_scope.cancel()

        elapsed = round(time.perf_counter() - self.wall_started, 3)
        out: list[Draft] = []
        for i, role in enumerate(drafters):
            d = drafts[i]
            if d is None:
                d = Draft(label=letters[i], model=role.ref, status="timeout", configured_weight=role.weight,
                          error=f"no answer within {elapsed:.1f} s (the draft budget of a {self.deadline_s:g} s deadline)",
                          latency_s=elapsed, cost_usd=_cost_of_failure(role))
                self.done_steps += 1
            out.append(d)
        return out

    # -- review ------------------------------------------------------------------------------

    def _drafts_block(self, drafts: list[Draft], nonce: str, with_weights: bool) -> str:
        parts = []
        for d in drafts:
            note = f' weight="{d.weight:.0%}"' if with_weights else ""
            parts.append(wrap_draft(d.text or "", d.label, nonce, note))
        return "\n\n".join(parts)

    async def _review(self, ok: list[Draft]) -> tuple[Stage, dict[str, Scores]]:
        role = self.ensemble.reviewer
        if role is None:
            return Stage(status="not_configured"), {}
        review_at = anyio.current_time() + max(0.0, self._left(self.deadline_at)) * REVIEW_SHARE
        if self._left(review_at) < MIN_STAGE_S:
            return Stage(model=role.ref, status="skipped", error="no time left in the deadline"), {}
        nonce = self._nonce("review")
        by_label = sorted(ok, key=lambda d: d.label)
        labels = [d.label for d in by_label]
        request = ChatRequest(
            messages=[
                Message(role="system", content=render("review_system", nonce=nonce)),
                Message(role="user", content=render(
                    "review_user", context_block=context_block(self.context), question=self.question,
                    drafts=self._drafts_block(by_label, nonce, with_weights=False), labels=", ".join(labels),
                )),
            ],
            temperature=role.temperature if role.temperature is not None else 0.0,
            max_tokens=role.max_tokens,
            seed=role.seed,
            json_schema=review_schema(labels),
        )
        t0 = time.perf_counter()
        try:
            c = await self.engine.call(role, request, timeout_s=self._left(review_at))
        except ProviderError as exc:
            status = "timeout" if exc.kind == "timeout" else "failed"
            return Stage(model=role.ref, status=status, error=exc.reason, cost_usd=_cost_of_failure(role),
                         latency_s=round(time.perf_counter() - t0, 3)), {}
        stage = Stage(model=role.ref, status="ok", latency_s=round(c.latency_s, 3), input_tokens=c.usage.input_tokens,
                      output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached)
        try:
            scores = parse_review(c.text, labels)
        except ReviewParseError as exc:
            return stage.model_copy(update={"status": "unparseable", "error": str(exc)}), {}
        missing = [label for label in labels if label not in scores]
        if missing:
            stage = stage.model_copy(update={"status": "partial", "error": f"no scores for {', '.join(missing)}"})
        return stage, scores

    def _weigh(self, drafts: list[Draft], scores: dict[str, Scores]) -> list[Draft]:
        """weight ∝ configured weight × (review quality blended with agreement), normalized over ok drafts."""
        ok = [d for d in drafts if d.status == "ok"]
        agreement = agreement_scores({d.label: d.text or "" for d in ok})
        mean_quality = sum(s.overall for s in scores.values()) / len(scores) / 10 if scores else None
        raw: dict[str, float] = {}
        for d in ok:
            if mean_quality is None:
                raw[d.label] = d.configured_weight
                continue
            quality = scores[d.label].overall / 10 if d.label in scores else mean_quality
            agree = agreement.get(d.label)
            blended = quality if agree is None else REVIEW_WEIGHT * quality + AGREEMENT_WEIGHT * agree
            raw[d.label] = d.configured_weight * blended
        total = sum(raw.values())
        if total <= 0:
            raw = {d.label: d.configured_weight for d in ok}
            total = sum(raw.values())
        out = []
        for d in drafts:
            update: dict[str, object] = {"scores": scores.get(d.label), "agreement": agreement.get(d.label)}
            if d.status == "ok":
                update["weight"] = round(raw[d.label] / total, 4)
            out.append(d.model_copy(update=update))
        return out

    # -- synthesis ---------------------------------------------------------------------------

    async def _synthesize(self, ok: list[Draft]) -> tuple[Stage, str | None]:
        role = self.ensemble.synthesizer
        if role is None:
            return Stage(status="not_configured"), None
        if self._left(self.deadline_at) < MIN_STAGE_S:
            return Stage(model=role.ref, status="skipped", error="no time left in the deadline"), None
        nonce = self._nonce("synthesis")
        ranked = sorted(ok, key=lambda d: -d.weight)
        request = ChatRequest(
            messages=[
                Message(role="system", content=render("synthesis_system", nonce=nonce)),
                Message(role="user", content=render(
                    "synthesis_user", context_block=context_block(self.context), question=self.question,
                    drafts=self._drafts_block(ranked, nonce, with_weights=True),
                )),
            ],
            temperature=role.temperature,
            max_tokens=role.max_tokens,
            seed=role.seed,
        )
        t0 = time.perf_counter()
        try:
            c = await self.engine.call(role, request, timeout_s=self._left(self.deadline_at))
        except ProviderError as exc:
            status = "timeout" if exc.kind == "timeout" else "failed"
            return Stage(model=role.ref, status=status, error=exc.reason, cost_usd=_cost_of_failure(role),
                         latency_s=round(time.perf_counter() - t0, 3)), None
        return Stage(model=role.ref, status="ok", latency_s=round(c.latency_s, 3), input_tokens=c.usage.input_tokens,
                     output_tokens=c.usage.output_tokens, cost_usd=c.cost_usd, cached=c.cached), c.text

    # -- the whole run -----------------------------------------------------------------------

    async def execute(self, *, synthesize: bool) -> FusionResult:
        if not synthesize:
            self.total_steps -= 1
        drafts = await self._draft()
        t_drafts = time.perf_counter() - self.wall_started
        ok = [d for d in drafts if d.status == "ok"]
        if not ok:
            raise NoDraftsError(self.ensemble.name, {f"draft {d.label} ({d.model})": f"{d.status}: {d.error}" for d in drafts})
        for d in drafts:
            if d.status != "ok":
                self.degraded.append(f"draft {d.label} ({d.model}) {d.status}: {d.error}")
        return await self._finish(drafts, t_drafts, synthesize=synthesize, reviewed=None)

    async def resume(self, previous: FusionResult) -> FusionResult:
        self.total_steps = 1
        ok = previous.ok_drafts()
        if not ok:
            raise NoDraftsError(self.ensemble.name, {d.model: f"{d.status}: {d.error}" for d in previous.drafts})
        self.degraded = list(previous.degraded_reasons)
        return await self._finish(previous.drafts, 0.0, synthesize=True, reviewed=previous.review)

    async def _finish(self, drafts: list[Draft], t_drafts: float, *, synthesize: bool, reviewed: Stage | None) -> FusionResult:
        ok = [d for d in drafts if d.status == "ok"]
        t0 = time.perf_counter()
        if reviewed is not None:  # resuming: keep the earlier review and weights
            review = reviewed
        elif len(ok) >= 2 or not synthesize:
            review, scores = await self._review(ok)
            drafts = self._weigh(drafts, scores)
            if review.status in ("failed", "timeout", "unparseable", "skipped"):
                self.degraded.append(f"review {review.status}: {review.error}; drafts weighted by their configured weights")
            elif review.status == "partial":
                self.degraded.append(f"review partial: {review.error}; those drafts got the mean score")
            await self._step("review", f"review: {review.status}", model=review.model, status=review.status,
                             latency_s=review.latency_s)
        else:
            review = Stage(model=self.ensemble.reviewer.ref if self.ensemble.reviewer else None, status="skipped",
                           error="only one draft: nothing to weigh")
            drafts = self._weigh(drafts, {})
            self.done_steps += 1
        t_review = time.perf_counter() - t0
        ok = [d for d in drafts if d.status == "ok"]

        t1 = time.perf_counter()
        answer: str | None = None
        source = "none"
        if not synthesize:
            synthesis = Stage(status="skipped", error="compare only: no synthesis asked for")
        elif len(ok) == 1 and self.ensemble.synthesizer is not None:
            synthesis = Stage(model=self.ensemble.synthesizer.ref, status="skipped", error="only one draft: nothing to fuse")
        else:
            synthesis, answer = await self._synthesize(ok)
            if answer is not None:
                source = "synthesis"
            elif synthesis.status != "not_configured":
                self.degraded.append(f"synthesis {synthesis.status}: {synthesis.error}; the answer is the best-weighted draft")
        if synthesize and answer is None:
            best = max(ok, key=lambda d: (d.weight, d.agreement or 0.0))
            answer, source = best.text, "best_draft"
        if synthesize:
            await self._step("synthesis", f"synthesis: {synthesis.status}", model=synthesis.model,
                             status=synthesis.status, latency_s=synthesis.latency_s)
        t_synthesis = time.perf_counter() - t1

        return FusionResult(
            run_id=self.run_id,
            ensemble=self.ensemble.name,
            question=self.question,
            context=self.context,
            answer=answer,
            answer_source=source,  # type: ignore[arg-type]
            drafts=drafts,
            review=review,
            synthesis=synthesis,
            agreement=_mean([d.agreement for d in ok if d.agreement is not None]),
            totals=self._totals(drafts, review, synthesis, t_drafts, t_review, t_synthesis,
                                reused=reviewed is not None),
            degraded=bool(self.degraded),
            degraded_reasons=self.degraded,
        )

    def _totals(self, drafts: list[Draft], review: Stage, synthesis: Stage,
                t_drafts: float, t_review: float, t_synthesis: float, *, reused: bool = False) -> Totals:
        """Usage, cost and time of the calls this run made. A resumed run (`reused`) made only its
        synthesis: the drafts and review it reused were counted in the run that made them.
        A call that timed out may still be billed upstream, so its cost counts as unknown."""
        calls: list[tuple[str, int | None, int | None, float | None]] = []
        path: list[CriticalStep] = []
        if not reused:
            calls += [(d.model, d.input_tokens, d.output_tokens, d.cost_usd)
                      for d in drafts if d.status in ("ok", "timeout")]
            ok = [d for d in drafts if d.status == "ok"]
            if ok:
                slowest = max(ok, key=lambda d: d.latency_s)
                path.append(CriticalStep(stage="draft", model=slowest.model, latency_s=slowest.latency_s))
        stages = [("synthesis", synthesis)] if reused else [("review", review), ("synthesis", synthesis)]
        for name, stage in stages:
            if stage.model and (stage.answered or stage.status == "timeout"):
                calls.append((stage.model, stage.input_tokens, stage.output_tokens, stage.cost_usd))
            if stage.model and stage.latency_s:
                path.append(CriticalStep(stage=name, model=stage.model, latency_s=stage.latency_s))  # type: ignore[arg-type]
        known = [c for _, _, _, c in calls if c is not None]
        return Totals(
            input_tokens=sum(i or 0 for _, i, _, _ in calls),
            output_tokens=sum(o or 0 for _, _, o, _ in calls),
            cost_usd=round(sum(known), 8) if known else None,
            cost_complete=len(known) == len(calls),
            unknown_cost_calls=[m for m, _, _, c in calls if c is None],
            wall_s=round(time.perf_counter() - self.wall_started, 3),
            draft_s=round(t_drafts, 3),
            review_s=round(t_review, 3),
            synthesis_s=round(t_synthesis, 3),
            critical_path=path,
            critical_path_s=round(sum(s.latency_s for s in path), 3),
        )


def _cost_of_failure(role: ModelRole) -> float | None:
    """A failed local call cost nothing; a failed hosted one may still be billed (unknown)."""
    return 0.0 if role.provider.kind == "local" else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
