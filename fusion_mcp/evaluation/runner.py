"""Running a dataset through targets (ensembles and baselines): bounded concurrency and a budget cap.

Jobs go item by item (every target on item 1, then item 2, ...), so a run the budget stops early
still compares the targets on the same items. The cap is checked before each job starts, by the
budget gate (budget_gate.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from ..clock import REAL_CLOCK, Clock
from ..config.ensemble_registry import EnsembleRegistry
from ..config.ensembles import DEFAULT_DEADLINE_S, Ensemble, ModelRole, split_model_ref
from ..errors import ConfigError, NoDraftsError
from ..fusion.engine import FusionEngine
from ..fusion.result import FusionResult
from ..providers.spec import BUILTIN_PROVIDERS, ProviderSpec
from . import strategies
from .budget_gate import BudgetGate, Gate
from .datasets import Item
from .strategies import Outcome


@dataclass(frozen=True)
class Target:
    """What runs on every item: an ensemble (several strategies) or a baseline model (one)."""

    name: str
    ensemble: Ensemble
    strategies: list[str]
    baseline: bool = False


@dataclass
class ItemRecord:
    target: str
    item: Item
    outcomes: dict[str, Outcome]
    result: FusionResult | None = None
    error: str | None = None
    spent_usd: float = 0.0  # known cost of the calls this run made upstream (cache hits are free)
    unknown_cost_calls: int = 0  # upstream calls whose cost is unknown
    calls: int = 0
    cached_calls: int = 0


@dataclass
class EvalRun:
    targets: list[Target]
    items: list[Item]
    records: list[ItemRecord] = field(default_factory=list)
    stopped: str | None = None
    max_cost_usd: float | None = None
    wall_s: float = 0.0

    @property
    def spent_usd(self) -> float:
        return round(sum(r.spent_usd for r in self.records), 10)

    @property
    def unknown_cost_calls(self) -> int:
        return sum(r.unknown_cost_calls for r in self.records)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.records)

    @property
    def cached_calls(self) -> int:
        return sum(r.cached_calls for r in self.records)


def resolve_provider(name: str, registry: EnsembleRegistry, flag: str = "--baseline") -> ProviderSpec:
    """A provider by name: built in, or declared in any loaded ensemble file."""
    if name in BUILTIN_PROVIDERS:
        return BUILTIN_PROVIDERS[name]
    for ens in registry.ensembles.values():
        for _, role in ens.roles:
            if role.provider.name == name:
                return role.provider
    known = sorted(set(BUILTIN_PROVIDERS) | {r.provider.name for e in registry.ensembles.values() for _, r in e.roles})
    raise ConfigError(f"{flag}: unknown provider {name!r}; use one of {', '.join(known)} "
                      "(or declare it in an ensemble file under [providers.NAME])")


def baseline_target(ref: str, registry: EnsembleRegistry, deadline_s: float | None) -> Target:
    """A model alone, sent the same draft prompt a drafter gets (so its calls share the cache)."""
    try:
        provider, model_id = split_model_ref(ref)
    except ValueError as exc:
        raise ConfigError(f"--baseline: {exc}") from None
    role = ModelRole(provider=resolve_provider(provider, registry), model_id=model_id)
    return role_target(ref, role, deadline_s)


def role_target(name: str, role: ModelRole, deadline_s: float | None) -> Target:
    """One model (at its settings) alone: a one-drafter ensemble whose draft is the answer."""
    ensemble = Ensemble(name=f"baseline:{name}", path=None, description=f"{name} alone", min_drafts=1,
                        deadline_s=deadline_s or DEFAULT_DEADLINE_S, drafters=(role,), reviewer=None, synthesizer=None)
    return Target(name=name, ensemble=ensemble, strategies=[strategies.BASELINE], baseline=True)


def _run_id(item: Item) -> str:
    """Fixed per item, so a rerun builds the same prompts and is answered by the cache; not per
    ensemble, so another ensemble with the same drafters and reviewer reuses the review too."""
    digest = hashlib.sha256(f"{item.id}\n{item.question}".encode()).hexdigest()
    return f"eval-{digest[:16]}"


def _spend(result: FusionResult) -> tuple[float, int, int, int]:
    """(known cost of upstream calls, upstream calls of unknown cost, calls, cache hits) of one run."""
    spent, unknown, calls, cached = 0.0, 0, 0, 0
    made = [(d.cost_usd, d.cached) for d in result.drafts if d.status == "ok"]
    made += [(s.cost_usd, s.cached) for s in (result.review, result.synthesis)
             if s.model and s.answered]
    for cost, was_cached in made:
        calls += 1
        if was_cached:
            cached += 1
        elif cost is None:
            unknown += 1
        else:
            spent += cost
    return spent, unknown, calls, cached


async def run_job(engine: FusionEngine, target: Target, item: Item, deadline_s: float | None) -> ItemRecord:
    synthesize = any(s in target.strategies for s in strategies.SYNTHESIZING) or target.baseline
    try:
        result = await engine.fuse(item.prompt(), ensemble=target.ensemble, deadline_s=deadline_s,
                                   synthesize=synthesize, run_id=_run_id(item))
    except NoDraftsError as exc:
        return ItemRecord(target=target.name, item=item, error=str(exc),
                          outcomes=strategies.failed_all(target.strategies, str(exc)))
    if target.baseline:
        outcomes = {strategies.BASELINE: strategies.baseline(result, item)}
    else:
        outcomes = strategies.apply(result, item, target.ensemble, target.strategies)
    spent, unknown, calls, cached = _spend(result)
    return ItemRecord(target=target.name, item=item, outcomes=outcomes, result=result, spent_usd=spent,
                      unknown_cost_calls=unknown, calls=calls, cached_calls=cached)


async def run_eval(
    engine: FusionEngine,
    items: list[Item],
    targets: list[Target],
    *,
    concurrency: int = 4,
    max_cost_usd: float | None = None,
    deadline_s: float | None = None,
    on_record: Callable[[ItemRecord], None] | None = None,
    clock: Clock = REAL_CLOCK,
) -> EvalRun:
    """Every target on every item, at most `concurrency` at a time, stopping before the cap is passed."""
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {concurrency}")
    run = EvalRun(targets=targets, items=items, max_cost_usd=max_cost_usd)
    started = clock.now()
    slots = anyio.Semaphore(concurrency)
    gate = BudgetGate(max_cost_usd, [t.name for t in targets])
    changed = anyio.Event()

    async def job(target: Target, item: Item) -> None:
        nonlocal changed
        spent: float | None = None
        try:
            record = await run_job(engine, target, item, deadline_s)
            run.records.append(record)
            spent = record.spent_usd
            if on_record:
                on_record(record)
        finally:
            gate.finished(target.name, spent)
            slots.release()
            changed.set()

    async with anyio.create_task_group() as tg:
        for item in items:
            for target in targets:
                await slots.acquire()
                while (verdict := gate.verdict(target.name)) is Gate.WAIT:
                    changed = anyio.Event()
                    await changed.wait()
                if verdict is Gate.STOP:
                    slots.release()
                    run.stopped = "budget"
                    break
                gate.started(target.name)
                tg.start_soon(job, target, item)
            if run.stopped:
                break
    if run.stopped:
        answered = len({r.item.id for r in run.records})
        run.stopped = (f"budget cap ${max_cost_usd:g}: stopped before passing it, after {answered} of "
                       f"{len(items)} items, having spent ${run.spent_usd:.4f}")
    order = {t.name: i for i, t in enumerate(targets)}
    index = {item.id: i for i, item in enumerate(items)}
    run.records.sort(key=lambda r: (index[r.item.id], order[r.target]))
    run.wall_s = round(clock.now() - started, 3)
    return run
