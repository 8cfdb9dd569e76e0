"""`fusion-mcp tune`: find the ensemble that does best on the user's own questions, without fooling itself.

1. Every candidate drafts every item once (eval's runner, one-drafter targets, the call cache): the
   single models' accuracy, cost and latency, and the material for everything after.
2. Every panel is scored from those drafts (panels.py); the most promising few, with each reviewer
   and synthesizer choice, are then run as eval runs them (review + synthesis, the drafts replayed).
3. The items are split with a fixed seed: the choice is made on the tune part only, and reported on
   the held-out part, with intervals and the paired test against the best single model.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config.ensembles import DEFAULT_DEADLINE_S, Ensemble
from ..config.pricing import Pricing
from ..errors import ConfigError
from ..fusion.engine import FusionEngine
from ..store.call_cache import SQLiteCallCache
from .candidates import Candidate, Choices
from .cascades import cascades
from .datasets import Dataset, Item
from .panels import Drafts, PanelScore, count_panels, score_panels, shortlist
from .recommend import Option, by_accuracy, choose, mark_fronts, reasons
from .replay import DraftReplay
from .report import summarize
from .runner import EvalRun, ItemRecord, Target, role_target, run_eval
from .stats import paired
from .strategies import BASELINE, GUARD
from .tune_cost import Estimate, dearest, estimate

Phase = Callable[[str, int], None]  # (phase name, jobs in it): a phase starts
Tick = Callable[[ItemRecord], None]  # a job finished


class CostCapError(ConfigError):
    """The estimate passes --max-cost-usd: nothing was called."""


@dataclass
class Settings:
    panel_size: int = 3
    confirm: int = 3
    holdout: float = 0.4
    seed: int = 0
    objective: str = "accuracy"
    tolerance: float = 0.01
    max_cost_usd: float | None = None
    deadline_s: float | None = None
    concurrency: int = 8


@dataclass
class Tune:
    dataset: Dataset
    settings: Settings
    tune_items: list[Item]
    held_items: list[Item]
    estimate: Estimate
    singles: list[Option] = field(default_factory=list)
    panels: list[PanelScore] = field(default_factory=list)
    shortlisted: list[PanelScore] = field(default_factory=list)
    confirmed: list[Option] = field(default_factory=list)
    cascades: list[Option] = field(default_factory=list)  # confirmed panels escalating on disagreement
    best_single: Option | None = None
    recommended: Option | None = None
    reasons: list[str] = field(default_factory=list)
    runs: list[EvalRun] = field(default_factory=list)
    stopped: str | None = None
    wall_s: float = 0.0

    @property
    def options(self) -> list[Option]:
        return self.singles + self.confirmed + self.cascades

    @property
    def report_items(self) -> list[Item]:
        return self.held_items or self.tune_items

    @property
    def spent_usd(self) -> float:
        return round(sum(r.spent_usd for r in self.runs), 10)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.runs)

    @property
    def cached_calls(self) -> int:
        return sum(r.cached_calls for r in self.runs)


def split(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(tune part, held-out part), each in dataset order; the same seed always gives the same split."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"--holdout must be at least 0 and below 1, not {fraction:g}")
    held_n = round(len(items) * fraction)
    if fraction > 0 and len(items) >= 2:
        held_n = min(max(held_n, 1), len(items) - 1)
    held = set(random.Random(f"tune-holdout-{seed}").sample(range(len(items)), held_n))
    return [it for i, it in enumerate(items) if i not in held], [it for i, it in enumerate(items) if i in held]


def plan(dataset: Dataset, choices: Choices, settings: Settings, cache: SQLiteCallCache | None,
         pricing: Pricing) -> Tune:
    """The split and the cost estimate at `pricing`'s prices (the engine's); raises CostCapError before
    any call when it passes the cap."""
    if settings.panel_size < 2:
        raise ConfigError(f"--panel-size must be at least 2, not {settings.panel_size}")
    if settings.confirm < 0:
        raise ConfigError(f"--confirm must be 0 or more, not {settings.confirm}")
    tune_items, held_items = split(dataset.items, settings.holdout, settings.seed)
    stand_in = dearest(choices.candidates, pricing)
    reviewers = [c.role if c else None for c in choices.reviewers] or [stand_in]
    synthesizers = [c.role if c else None for c in choices.synthesizers] or [stand_in]
    panels = min(settings.confirm, count_panels(len(choices.candidates), settings.panel_size))
    est = estimate(dataset.items, choices.candidates, reviewers, synthesizers, panels,
                   min(settings.panel_size, len(choices.candidates)), cache, pricing)
    cap = settings.max_cost_usd
    if cap is not None and est.total_usd is None:
        raise CostCapError(f"cannot hold the tune to --max-cost-usd: no price for {', '.join(est.unpriced)}; add "
                           "them to a price file named by FUSION_MCP_PRICES, or drop --max-cost-usd")
    if cap is not None and est.total_usd is not None and est.total_usd > cap:
        raise CostCapError(f"the {est.text()}; that passes --max-cost-usd ${cap:g}, so nothing was called. Raise "
                           "the cap, or lower --limit, --confirm or --panel-size, or drop candidates")
    return Tune(dataset=dataset, settings=settings, tune_items=tune_items, held_items=held_items, estimate=est)


def _rows(option: Option, tune: Tune) -> None:
    option.tune = summarize(option.label, "tune", [option.outcomes[i.id] for i in tune.tune_items])
    option.report = summarize(option.label, "held-out", [option.outcomes[i.id] for i in tune.report_items])


def _panel_target(panel: PanelScore, members: dict[str, Candidate], reviewer: Candidate | None,
                  synthesizer: Candidate | None, deadline_s: float | None) -> tuple[Target, Option]:
    label = (f"{panel.label} · review {reviewer.label if reviewer else 'none'}"
             f" · synthesis {synthesizer.label if synthesizer else 'none'}")
    roles = tuple(members[m].role for m in panel.members)
    ensemble = Ensemble(name=label, path=None, description=label, deadline_s=deadline_s or DEFAULT_DEADLINE_S,
                        min_drafts=min(len(roles), max(1, (len(roles) + 1) // 2)), drafters=roles,
                        reviewer=reviewer.role if reviewer else None,
                        synthesizer=synthesizer.role if synthesizer else None)
    option = Option(label=label, members=tuple(members[m] for m in panel.members), reviewer=reviewer,
                    synthesizer=synthesizer, outcomes={})
    return Target(name=label, ensemble=ensemble, strategies=[GUARD]), option  # the product: the guarded synthesis


def _complete(items: list[Item], run: EvalRun) -> list[Item]:
    """The items every target of a run finished (a budget stop can leave the last one partial)."""
    done: dict[str, int] = {}
    for r in run.records:
        done[r.item.id] = done.get(r.item.id, 0) + 1
    return [i for i in items if done.get(i.id) == len(run.targets)]


async def run_tune(engine: FusionEngine, choices: Choices, tune: Tune, *, on_phase: Phase | None = None,
                   on_record: Tick | None = None) -> Tune:
    """Draft, rank, confirm and choose; fills in `tune`."""
    s = tune.settings
    started = time.perf_counter()
    replay = DraftReplay(engine.call)
    engine.call = replay
    by_label = {c.label: c for c in choices.candidates}
    items = tune.dataset.items
    if on_phase:
        on_phase("drafts", len(items) * len(choices.candidates))
    targets = [role_target(c.label, c.role, s.deadline_s) for c in choices.candidates]
    run = await run_eval(engine, items, targets, concurrency=s.concurrency, max_cost_usd=s.max_cost_usd,
                         deadline_s=s.deadline_s, on_record=on_record)
    tune.runs.append(run)
    drafts = Drafts({t.name: {} for t in targets})
    for rec in run.records:
        drafts.by_candidate[rec.target][rec.item.id] = rec.outcomes[BASELINE]
    _restrict(tune, _complete(items, run), run.stopped)
    if not tune.tune_items:
        raise ConfigError(f"no item was drafted by every candidate ({run.stopped or 'nothing ran'})")

    tune.singles = [Option(label=c.label, members=(c,), reviewer=None, synthesizer=None,
                           outcomes=drafts.by_candidate[c.label]) for c in choices.candidates]
    for o in tune.singles:
        _rows(o, tune)
    tune.best_single = by_accuracy(tune.singles)[0]
    tune.panels = score_panels(drafts, {o.label: o.tune for o in tune.singles if o.tune}, tune.tune_items, s.panel_size)
    tune.shortlisted = shortlist(tune.panels, s.confirm)

    best = tune.best_single.members[0]
    reviewers = choices.reviewers or [best]
    synthesizers = choices.synthesizers or [best]
    pairs = [_panel_target(p, by_label, r, y, s.deadline_s)
             for p in tune.shortlisted for r in reviewers for y in synthesizers]
    if pairs and not tune.stopped:
        replay.recording = False
        if on_phase:
            on_phase("confirm", len(tune.dataset.items) * len(pairs))
        left = None if s.max_cost_usd is None else max(0.0, s.max_cost_usd - tune.spent_usd)
        confirm = await run_eval(engine, tune.tune_items + tune.held_items, [t for t, _ in pairs],
                                 concurrency=s.concurrency, max_cost_usd=left, deadline_s=s.deadline_s,
                                 on_record=on_record)
        tune.runs.append(confirm)
        options = {o.label: o for _, o in pairs}
        for rec in confirm.records:
            options[rec.target].outcomes[rec.item.id] = rec.outcomes[GUARD]
        _restrict(tune, _complete(tune.tune_items + tune.held_items, confirm), confirm.stopped)
        tune.confirmed = [o for _, o in pairs]
        tune.cascades = cascades(tune.confirmed, tune.singles + tune.confirmed, drafts,
                                 tune.tune_items + tune.held_items)
    _choose(tune)
    tune.wall_s = round(time.perf_counter() - started, 3)
    return tune


def _restrict(tune: Tune, complete: list[Item], stopped: str | None) -> None:
    """Keep only the items everything finished, so every comparison stays paired."""
    ids = {i.id for i in complete}
    tune.tune_items = [i for i in tune.tune_items if i.id in ids]
    tune.held_items = [i for i in tune.held_items if i.id in ids]
    if stopped:
        tune.stopped = stopped


def _choose(tune: Tune) -> None:
    for o in tune.options:
        _rows(o, tune)
    best = tune.best_single = by_accuracy(tune.singles)[0]
    mark_fronts(tune.options)
    for o in tune.options:
        if o is not best:
            o.versus_best = paired([o.outcomes[i.id].correct for i in tune.report_items],
                                   [best.outcomes[i.id].correct for i in tune.report_items])
    s = tune.settings
    tune.recommended = choose(tune.options, s.objective, s.tolerance)
    tune.reasons = reasons(tune.recommended, best, tune.options, s.objective, s.tolerance,
                           len(tune.tune_items), len(tune.held_items))
