"""How much each draft counts in the synthesis: review quality blended with agreement."""

from __future__ import annotations

import re
from itertools import combinations

from .result import Draft, Scores

REVIEW_WEIGHT, AGREEMENT_WEIGHT = 0.8, 0.2
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def agreement_scores(texts: dict[str, str]) -> dict[str, float]:
    """Each draft's mean Jaccard word overlap with the others: a cheap consensus signal."""
    if len(texts) < 2:
        return {}
    words = {label: _words(t) for label, t in texts.items()}
    sums = {label: 0.0 for label in texts}
    for a, b in combinations(texts, 2):
        union = words[a] | words[b]
        sim = len(words[a] & words[b]) / len(union) if union else 1.0
        sums[a] += sim
        sums[b] += sim
    return {label: round(total / (len(texts) - 1), 4) for label, total in sums.items()}


def weigh(drafts: list[Draft], scores: dict[str, Scores]) -> list[Draft]:
    """weight ∝ configured weight × (review quality blended with agreement), normalized over ok drafts.

    Without any review scores the configured weights stand; a draft the review left unscored gets
    the mean score of the others.
    """
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


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
