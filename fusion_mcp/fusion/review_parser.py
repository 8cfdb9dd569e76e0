"""The review's reply format: the JSON schema asked for, and a robust parser for what comes back."""

from __future__ import annotations

import json
import re
from typing import Any

from .result import Scores

_DRAFT_REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    # The reason comes first, so that a model decoding in order reasons before it scores.
    "properties": {
        "reason": {"type": "string"},
        "consistency": {"type": "integer", "minimum": 0, "maximum": 10},
        "accuracy": {"type": "integer", "minimum": 0, "maximum": 10},
        "completeness": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["reason", "consistency", "accuracy", "completeness"],
}


def review_schema(labels: list[str]) -> dict[str, Any]:
    """A JSON schema with one required entry per draft label, so that a provider that enforces
    schemas (llama.cpp grammars, OpenAI structured output) cannot leave a draft unscored."""
    return {
        "type": "object",
        "properties": {label: _DRAFT_REVIEW_SCHEMA for label in labels},
        "required": list(labels),
        "additionalProperties": False,
    }


_ALIASES = {
    "consistency": ("consistency", "semantic_consistency", "semantic consistency", "coherence"),
    "accuracy": ("accuracy", "factual_accuracy", "factual accuracy", "correctness"),
    "completeness": ("completeness", "logical_completeness", "logical completeness"),
}
_OVERALL = ("score", "overall", "rating", "total")
_REASON = ("reason", "rationale", "explanation", "comment", "justification")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


# A reply is the model's to write: a hostile or broken one must cost a parse error, not the run.
# Start positions tried per source (a real review's JSON starts early), so that a reply of
# thousands of brackets costs milliseconds.
_MAX_STARTS = 256


class ReviewParseError(ValueError):
    pass


def _json_candidates(text: str) -> list[Any]:
    """Every JSON value that can be read from the text: fenced blocks first, then embedded objects."""
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for source in sources:
        for variant in (source, _TRAILING_COMMA.sub(r"\1", source)):
            starts = 0
            for i, ch in enumerate(variant):
                if ch not in "{[":
                    continue
                starts += 1
                if starts > _MAX_STARTS:
                    break
                try:
                    value, _ = decoder.raw_decode(variant, i)
                except json.JSONDecodeError:
                    continue
                except RecursionError:  # nested deeper than any review: every later start is inside it
                    break
                found.append(value)
                break
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.search(r"-?\d+(?:\.\d+)?", value)
        return float(match.group()) if match else None
    return None


def _field(item: dict[str, Any], names: tuple[str, ...]) -> Any:
    lowered = {str(k).lower(): v for k, v in item.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _scores_from_item(item: Any) -> dict[str, Any] | None:
    if isinstance(item, (int, float, str)) and not isinstance(item, bool):
        n = _number(item)
        return None if n is None else {"consistency": n, "accuracy": n, "completeness": n, "reason": ""}
    if not isinstance(item, dict):
        return None
    overall = _number(_field(item, _OVERALL))
    marks: dict[str, Any] = {}
    for key, names in _ALIASES.items():
        n = _number(_field(item, names))
        if n is None:
            n = overall
        if n is None:
            return None
        marks[key] = n
    reason = _field(item, _REASON)
    marks["reason"] = str(reason)[:500] if reason is not None else ""
    return marks


def _items(value: Any) -> list[tuple[str, Any]]:
    """(label, item) pairs from the shapes reviewers produce."""
    if isinstance(value, dict):
        for key in ("reviews", "drafts", "scores", "evaluations", "results"):
            inner = _field(value, (key,))
            if isinstance(inner, (list, dict)):
                return _items(inner)
        if _field(value, ("label", "draft", "id")) is not None:
            return _items([value])
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                label = _field(item, ("label", "draft", "id", "name"))
                if label is not None:
                    out.append((str(label), item))
        return out
    return []


def _normalize_label(raw: str, labels: set[str]) -> str | None:
    text = raw.strip().strip('"').upper()
    if text in labels:
        return text
    match = re.fullmatch(r"(?:DRAFT|RESPONSE|ANSWER)?[\s_\-]*([A-Z])", text)
    if match and match.group(1) in labels:
        return match.group(1)
    return None


def _scale(marks: list[dict[str, Any]]) -> float:
    """Reviewers mix scales: 0-1, 0-10 and 0-100 are all seen. Find a factor to 0-10."""
    values = [m[k] for m in marks for k in ("consistency", "accuracy", "completeness")]
    top = max(values, default=0)
    if top > 10:
        return 0.1
    if 0 < top <= 1 and all(0 <= v <= 1 for v in values) and any(0 < v < 1 for v in values):
        return 10.0
    return 1.0


def parse_review(text: str, labels: list[str]) -> dict[str, Scores]:
    """Scores by draft label; raises ReviewParseError, and nothing else, when no draft's scores can be read."""
    try:
        return _parse(text, labels)
    except ReviewParseError:
        raise
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:  # a shape no reviewer meant
        snippet = text.strip().replace("\n", " ")[:120]
        raise ReviewParseError(f"unreadable review ({type(exc).__name__}): {snippet!r}") from None


def _parse(text: str, labels: list[str]) -> dict[str, Scores]:
    wanted = set(labels)
    for candidate in _json_candidates(text):
        parsed: dict[str, dict[str, Any]] = {}
        for raw_label, item in _items(candidate):
            label = _normalize_label(raw_label, wanted)
            marks = _scores_from_item(item)
            if label and marks and label not in parsed:
                parsed[label] = marks
        if parsed:
            factor = _scale(list(parsed.values()))
            out = {}
            for label, marks in parsed.items():
                out[label] = Scores(
                    consistency=min(10.0, max(0.0, marks["consistency"] * factor)),
                    accuracy=min(10.0, max(0.0, marks["accuracy"] * factor)),
                    completeness=min(10.0, max(0.0, marks["completeness"] * factor)),
                    reason=marks["reason"],
                )
            return out
    snippet = text.strip().replace("\n", " ")[:120]
    raise ReviewParseError(f"no scores for drafts {', '.join(labels)} in the review: {snippet!r}")
