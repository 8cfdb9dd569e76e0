"""Cascades in `tune`: a confirmed cheap panel that hands a question on to a dearer option only when
its drafts disagree, scored from the runs tune already made (no new model call).

On each item the cheap panel's members' drafted answers (the extracted ones) either all agree, and the
cascade answers as the cheap panel did (its own fused outcome), or they do not, and it answers as the
dearer option did, paying for the cheap drafts as well (cost: their sum plus the dearer option's;
latency: the slowest cheap draft plus the dearer option's). The dearer option's cost is counted in full,
an upper bound: a real cascade's call cache answers a draft both panels share.
"""

from __future__ import annotations

from .datasets import Item
from .panels import Drafts
from .recommend import Option
from .strategies import Outcome


def agrees(drafts: Drafts, members: list[str], item: Item) -> bool:
    """Every member drafted, and all name the same answer (the run's cascade escalates otherwise)."""
    mine = [drafts.by_candidate[m][item.id] for m in members]
    answers = {o.prediction for o in mine}
    return all(o.failed is None for o in mine) and len(answers) == 1 and None not in answers


def _escalated(drafts: Drafts, members: list[str], item: Item, later: Outcome) -> Outcome:
    mine = [drafts.by_candidate[m][item.id] for m in members]
    known = [o.cost_usd for o in [*mine, later] if o.cost_usd is not None]
    waited = max((o.latency_s for o in mine if o.latency_s is not None), default=0.0)
    return Outcome(prediction=later.prediction, correct=later.correct, unparseable=later.unparseable,
                   failed=later.failed, cost_usd=round(sum(known), 10) if known else None,
                   cost_complete=later.cost_complete and all(o.cost_complete and o.cost_usd is not None for o in mine),
                   latency_s=None if later.latency_s is None else waited + later.latency_s)


def cascade(cheap: Option, later: Option, drafts: Drafts, items: list[Item], number: int = 1) -> Option:
    """`cheap` escalating to `later`, scored on `items` (both must have an outcome on each). Its label is
    short (`cascade 01`, so that a report's table stays readable); `Option.cascade` says what it is."""
    members = [c.label for c in cheap.members]
    outcomes: dict[str, Outcome] = {}
    escalated = 0
    for item in items:
        if agrees(drafts, members, item):
            outcomes[item.id] = cheap.outcomes[item.id]
        else:
            escalated += 1
            outcomes[item.id] = _escalated(drafts, members, item, later.outcomes[item.id])
    return Option(label=f"cascade {number:02d}", members=cheap.members, reviewer=cheap.reviewer,
                  synthesizer=cheap.synthesizer, outcomes=outcomes, escalate_to=later, first=cheap,
                  escalated=escalated / len(items) if items else None)


def cascades(confirmed: list[Option], others: list[Option], drafts: Drafts, items: list[Item]) -> list[Option]:
    """Every confirmed panel escalating to every other option that answered every item."""
    ids = [i.id for i in items]
    out: list[Option] = []
    for cheap in confirmed:
        if len(cheap.members) < 2 or not all(i in cheap.outcomes for i in ids):
            continue
        for later in others:
            if later is not cheap and later.escalate_to is None and all(i in later.outcomes for i in ids):
                out.append(cascade(cheap, later, drafts, items, len(out) + 1))
    return out
