"""The review's structured analysis: its JSON schema, and a forgiving reader for what comes back.

Consensus, contradictions (each stance by draft label), partial coverage, unique insights and
blind spots. Entries that cannot be read, or that name no known draft, are dropped one by one, so
one odd entry never costs the rest.
"""

from __future__ import annotations

from typing import Any

from .result import Analysis, Contradiction, Coverage, Insight, Stance
from .review_fields import field, normalize_label, text_of

MAX_ENTRIES = 20

_KEYS = {
    "consensus": ("consensus", "agreements", "agreement", "agreed"),
    "contradictions": ("contradictions", "disagreements", "conflicts"),
    "partial_coverage": ("partial_coverage", "partial coverage", "partial", "coverage"),
    "unique_insights": ("unique_insights", "unique insights", "insights", "unique"),
    "blind_spots": ("blind_spots", "blind spots", "gaps", "omissions"),
}


def analysis_properties(labels: list[str]) -> dict[str, Any]:
    """The schema of the analysis fields, labels restricted to the drafts'."""
    label = {"type": "string", "enum": list(labels)}
    text = {"type": "string"}
    return {
        "consensus": {"type": "array", "items": text},
        "contradictions": {"type": "array", "items": {
            "type": "object",
            "properties": {"topic": text, "stances": {"type": "array", "items": {
                "type": "object", "properties": {"label": label, "stance": text}, "required": ["label", "stance"],
            }}, "checked_source": text, "finding": text},
            "required": ["topic", "stances"],
        }},
        "partial_coverage": {"type": "array", "items": {
            "type": "object", "properties": {"point": text, "labels": {"type": "array", "items": label}},
            "required": ["point", "labels"],
        }},
        "unique_insights": {"type": "array", "items": {
            "type": "object", "properties": {"label": label, "insight": text}, "required": ["label", "insight"],
        }},
        "blind_spots": {"type": "array", "items": text},
    }


def _entries(value: Any) -> list[Any]:
    if isinstance(value, dict):  # {"A": "stance", ...} or {"topic": ...} alone
        return [value]
    return value[:MAX_ENTRIES] if isinstance(value, list) else []


def _texts(value: Any) -> list[str]:
    out = []
    for item in _entries(value) if not isinstance(value, str) else [value]:
        t = text_of(field(item, ("point", "text", "topic", "description")) if isinstance(item, dict) else item)
        if t:
            out.append(t)
    return out


def _labels(value: Any, wanted: set[str]) -> list[str]:
    raw = value.replace(",", " ").split() if isinstance(value, str) else value if isinstance(value, list) else []
    found = [normalize_label(x, wanted) for x in raw]
    return list(dict.fromkeys(x for x in found if x))


def _stances(value: Any, wanted: set[str]) -> list[Stance]:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(field(s, ("label", "draft", "id")), field(s, ("stance", "position", "claim", "view")))
                 for s in value if isinstance(s, dict)]
    out = []
    for raw_label, raw_stance in pairs:
        label, stance = normalize_label(raw_label, wanted), text_of(raw_stance)
        if label and stance:
            out.append(Stance(label=label, stance=stance))
    return out


def _contradictions(value: Any, wanted: set[str]) -> list[Contradiction]:
    out = []
    for item in _entries(value):
        if not isinstance(item, dict):
            continue
        topic = text_of(field(item, ("topic", "point", "issue", "question")))
        stances = _stances(field(item, ("stances", "positions", "views")), wanted)
        if topic and stances:
            # a reviewer with web_fetch says which source it checked and what it found
            checked = text_of(field(item, ("checked_source", "source", "checked")))
            finding = text_of(field(item, ("finding", "found", "verdict")))
            out.append(Contradiction(topic=topic, stances=stances, checked_source=checked, finding=finding))
    return out


def _coverage(value: Any, wanted: set[str]) -> list[Coverage]:
    out = []
    for item in _entries(value):
        if not isinstance(item, dict):
            continue
        point = text_of(field(item, ("point", "topic", "text")))
        labels = _labels(field(item, ("labels", "drafts", "covered_by")), wanted)
        if point and labels:
            out.append(Coverage(point=point, labels=labels))
    return out


def _insights(value: Any, wanted: set[str]) -> list[Insight]:
    items: list[tuple[Any, Any]] = []
    for item in _entries(value):
        if isinstance(item, dict) and field(item, ("label", "draft", "id")) is not None:
            items.append((field(item, ("label", "draft", "id")), field(item, ("insight", "point", "text"))))
        elif isinstance(item, dict):
            items += list(item.items())
    out = []
    for raw_label, raw_text in items:
        label, insight = normalize_label(raw_label, wanted), text_of(raw_text)
        if label and insight:
            out.append(Insight(label=label, insight=insight))
    return out


def parse_analysis(value: Any, labels: list[str]) -> Analysis | None:
    """The analysis in one decoded review reply; None when it has no analysis field at all."""
    if not isinstance(value, dict):
        return None
    found = {key: field(value, names) for key, names in _KEYS.items()}
    if all(v is None for v in found.values()):
        return None
    wanted = set(labels)
    return Analysis(
        consensus=_texts(found["consensus"]),
        contradictions=_contradictions(found["contradictions"], wanted),
        partial_coverage=_coverage(found["partial_coverage"], wanted),
        unique_insights=_insights(found["unique_insights"], wanted),
        blind_spots=_texts(found["blind_spots"]),
    )
