"""One fusion run: draft → review and weigh → synthesize (or fall back), and the result it builds.

Each stage is a function in its own module that takes what it needs and returns a typed outcome;
this module only composes them, keeps the list of what degraded, and counts time and progress.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..clock import REAL_CLOCK, Clock
from ..config.ensembles import Ensemble
from ..errors import NoDraftsError
from ..web.tools import WebTools
from . import accounting, cascade, guard
from .budget import Budget
from .calls import ModelCaller
from .claims import read_claims
from .delimit import marker
from .drafting import draft_all, draft_labels
from .events import Progress, ProgressCallback
from .markup import scrub
from .result import Analysis, AnswerSource, Claim, Draft, FusionResult, GuardCheck, Stage
from .review import ReviewOutcome, review
from .sources import citation_flags, collect_sources
from .synthesis import synthesize
from .timing import TimePlan
from .unanimity import unanimous
from .weights import mean, weigh


@dataclass
class RunInput:
    """What a run answers, and with which ensemble and deadline."""

    ensemble: Ensemble
    question: str
    context: str | None
    deadline_s: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    max_cost_usd: float | None = None  # the spending cap, checked before each call
    estimated_cost_usd: float | None = None  # the most the run could cost, worked out before it
    criteria: str | None = None  # what the reviewer and synthesizer weigh; None: the ensemble's own

    @property
    def judging(self) -> str | None:
        """The criteria in force: the call's, else the ensemble's."""
        return self.criteria or self.ensemble.criteria


class Run:
    """The state of one run; lives for one `fuse` or `synthesize_from` call."""

    def __init__(self, call: ModelCaller, spec: RunInput, on_event: ProgressCallback | None,
                 on_text: Callable[[str], None] | None = None,
                 resolve: Callable[[str], Ensemble] | None = None, *, clock: Clock = REAL_CLOCK) -> None:
        self.call = call.with_budget(Budget(spec.max_cost_usd, call.pricing)) if spec.max_cost_usd is not None else call
        self.spec = spec
        self.on_event = on_event
        self.on_text = on_text
        self.resolve = resolve  # a cascade's next ensemble by name (the engine builds its providers)
        self.clock = clock
        self.plan = TimePlan(spec.deadline_s, spec.ensemble, call.paces, clock)
        self.times = accounting.StageTimes(started=clock.now())
        self.degraded: list[str] = []
        self.markers: list[str] = []  # every delimiter marker this run put in a prompt: none may leave it
        self.tools: WebTools | None = None  # the web tools, while a run whose roles have some is going

    def _open_tools(self) -> None:
        ens = self.spec.ensemble
        if ens.web is not None and any(role.tools for _, role in ens.roles):
            self.tools = WebTools(ens.web, self.spec.run_id)

    async def _close_tools(self) -> None:
        if self.tools is not None:
            await self.tools.aclose()
            self.tools = None

    def _nonce(self, stage: str, drafts: list[Draft]) -> str:
        """The delimiter marker: the same for a rerun of the same drafts (so the call cache answers it),
        and known to no draft, since it hashes every draft's text (delimit.marker)."""
        nonce = marker(self.spec.run_id, stage, [d.text or "" for d in drafts])
        self.markers.append(nonce)
        return nonce

    async def fuse(self, *, synthesize_answer: bool) -> FusionResult:
        """Draft, review, and (unless compare-only) synthesize."""
        self._open_tools()
        try:
            return await self._fuse(synthesize_answer=synthesize_answer)
        finally:
            await self._close_tools()

    async def _fuse(self, *, synthesize_answer: bool) -> FusionResult:
        s = self.spec
        progress = Progress(len(s.ensemble.drafters) + 1 + int(synthesize_answer), self.on_event)
        labels = draft_labels(len(s.ensemble.drafters), random.Random(s.run_id))
        t0 = self.clock.now()
        drafts = await draft_all(self.call, s.ensemble, s.question, s.context, labels, self.plan, progress,
                                 self.tools)
        self.times.draft_s = self.clock.now() - t0
        ok = [d for d in drafts if d.status == "ok"]
        if not ok:
            reasons = {f"draft {d.label} ({d.model})": f"{d.status}: {d.error}" for d in drafts}
            raise NoDraftsError(s.ensemble.name, reasons)
        self.degraded += [f"draft {d.label} ({d.model}) {d.status}: {d.error}" for d in drafts if d.status != "ok"]
        escalate = synthesize_answer and s.ensemble.escalate_to is not None and self.resolve is not None
        if escalate and (why := cascade.answers_differ(ok)):
            return await self._escalate(drafts, None, why)

        t0 = self.clock.now()
        agreed = unanimous(ok) if synthesize_answer and s.ensemble.skip_review_when_unanimous else None
        if agreed is not None and s.ensemble.reviewer is not None:
            why = f"all {len(ok)} drafts give the same final answer ({agreed[:60]!r}): nothing for a review to weigh"
            self.plan.decide(f"review skipped: {why}")
            outcome = ReviewOutcome(Stage(model=s.ensemble.reviewer.ref, status="skipped", error=why))
            progress.skip()
        elif len(ok) >= 2 or not synthesize_answer:
            outcome = await review(self.call, s.ensemble.reviewer, s.question, s.context, ok, self._nonce("review", ok),
                                   self.plan, analysis=s.ensemble.review_analysis, tools=self.tools,
                                   max_tool_calls=s.ensemble.web.max_tool_calls if s.ensemble.web else 0,
                                   criteria=s.judging, prompts=s.ensemble.prompts)
            if outcome.degradation:
                self.degraded.append(outcome.degradation)
            await progress.step("review", f"review: {outcome.stage.status}", model=outcome.stage.model,
                                status=outcome.stage.status, latency_s=outcome.stage.latency_s)
        else:
            reviewer = s.ensemble.reviewer.ref if s.ensemble.reviewer else None
            outcome = ReviewOutcome(Stage(model=reviewer, status="skipped", error="only one draft: nothing to weigh"))
            progress.skip()
        drafts = weigh(drafts, outcome.scores)
        self.times.review_s = self.clock.now() - t0
        if escalate and (why := cascade.disputed(outcome.analysis)):
            return await self._escalate(drafts, outcome, why)

        if not synthesize_answer:
            synthesis = Stage(status="skipped", error="compare only: no synthesis asked for")
            compared = self._result(drafts, outcome.stage, synthesis, None, "none", outcome.analysis)
            return compared.model_copy(update={"sources": collect_sources(drafts)})
        return await self._answer(drafts, outcome.stage, progress, outcome.analysis, reused=False)

    async def resume(self, previous: FusionResult) -> FusionResult:
        """Synthesize from an earlier run's drafts and review, calling no drafter."""
        if not previous.ok_drafts():
            raise NoDraftsError(self.spec.ensemble.name, {d.model: f"{d.status}: {d.error}" for d in previous.drafts})
        self.degraded = list(previous.degraded_reasons)
        self._open_tools()
        try:
            return await self._answer(previous.drafts, previous.review, Progress(1, self.on_event), previous.analysis,
                                      reused=True)
        finally:
            await self._close_tools()

    async def _answer(self, drafts: list[Draft], review_stage: Stage, progress: Progress, analysis: Analysis | None,
                      *, reused: bool) -> FusionResult:
        """The synthesis, or the best-weighted draft when there is nothing to fuse or it failed."""
        s = self.spec
        ok = [d for d in drafts if d.status == "ok"]
        t0 = self.clock.now()
        answer: str | None = None
        source: AnswerSource = "none"
        sources = collect_sources(drafts)
        if len(ok) == 1 and s.ensemble.synthesizer is not None:
            synthesis = Stage(model=s.ensemble.synthesizer.ref, status="skipped",
                              error="only one draft: nothing to fuse")
        else:
            self._nonce("review", ok)  # the review's marker too: an analysis that echoed it is scrubbed
            outcome = await synthesize(self.call, s.ensemble.synthesizer, s.question, s.context, ok,
                                       self._nonce("synthesis", ok), self.plan, self.on_text, analysis, sources,
                                       self.tools, s.ensemble.web.max_tool_calls if s.ensemble.web else 0,
                                       markers=self.markers, criteria=s.judging, prompts=s.ensemble.prompts,
                                       claims=s.ensemble.claims)
            synthesis, answer = outcome.stage, outcome.text
            if answer is not None:
                source = "synthesis"
                if synthesis.status == "truncated":
                    self.degraded.append(f"synthesis truncated ({synthesis.model}): {synthesis.error}")
            elif synthesis.status != "not_configured":
                self.degraded.append(f"synthesis ({synthesis.model}) {synthesis.status}: {synthesis.error}; "
                                     "the answer is the best-weighted draft")
        checked: GuardCheck | None = None
        claims: list[Claim] = []
        if answer is not None:
            answer, claims = read_claims(answer, ok)
            if s.ensemble.guard:
                checked = guard.check(ok, answer)
                if checked.verdict == "replaced":
                    checked.synthesis_text = answer
                    answer, source = next(d.text for d in ok if d.label == checked.answer_label), "guard:majority_draft"
                    claims = []
                    self.degraded.append(f"guard: {checked.reason}")
        if answer is None:
            best = max(ok, key=lambda d: (d.weight, d.agreement or 0.0))
            answer, source = best.text, "best_draft"
        await progress.step("synthesis", f"synthesis: {synthesis.status}", model=synthesis.model,
                            status=synthesis.status, latency_s=synthesis.latency_s)
        self.times.synthesis_s = self.clock.now() - t0
        result = self._result(drafts, review_stage, synthesis, answer, source, analysis, reused=reused)
        checks = citation_flags(answer, sources) if source == "synthesis" and (sources or s.ensemble.web) else []
        return result.model_copy(update={"guard": checked, "claims": claims, "sources": sources,
                                         "citation_flags": checks})

    async def _escalate(self, drafts: list[Draft], outcome: ReviewOutcome | None, why: str) -> FusionResult:
        """The cascade's next ensemble answers; this panel's drafts (and review) stay in the result."""
        s = self.spec
        name = s.ensemble.escalate_to
        assert self.resolve is not None and name is not None
        nxt = self.resolve(name)
        self.plan.decide(f"escalated to {nxt.name}: {why}")
        spec = RunInput(nxt, s.question, s.context, nxt.deadline_s, run_id=s.run_id, criteria=s.criteria)
        spec.max_cost_usd = None  # self.call already carries this run's budget, shared with the next panel
        first = self._result(drafts, outcome.stage if outcome else Stage(status="skipped", error=why),
                             Stage(status="skipped", error=f"escalated to {nxt.name}"), None, "none",
                             outcome.analysis if outcome else None)  # its totals stop here
        later = await Run(self.call, spec, self.on_event, self.on_text, self.resolve,
                          clock=self.clock).fuse(synthesize_answer=True)
        return cascade.combine(first, later, why)

    def _result(self, drafts: list[Draft], review_stage: Stage, synthesis: Stage, answer: str | None,
                source: AnswerSource, analysis: Analysis | None, *, reused: bool = False) -> FusionResult:
        s = self.spec
        drafts = [d.model_copy(update={"text": scrub(d.text, self.markers)}) if d.text else d for d in drafts]
        ok = [d for d in drafts if d.status == "ok"]
        if answer is not None:
            answer = scrub(answer, self.markers)
        if analysis is not None:
            analysis = Analysis.model_validate_json(scrub(analysis.model_dump_json(), self.markers))
        return FusionResult(
            run_id=s.run_id,
            ensemble=s.ensemble.name,
            question=s.question,
            context=s.context,
            answer=answer,
            answer_source=source,
            drafts=drafts,
            review=review_stage,
            synthesis=synthesis,
            agreement=mean([d.agreement for d in ok if d.agreement is not None]),
            analysis=analysis,
            max_cost_usd=s.max_cost_usd,
            estimated_cost_usd=s.estimated_cost_usd,
            totals=accounting.totals(drafts, review_stage, synthesis, self.times, self.clock.now(), reused=reused),
            schedule=self.plan.schedule,
            degraded=bool(self.degraded),
            degraded_reasons=self.degraded,
            criteria=s.judging,
        )
