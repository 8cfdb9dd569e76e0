"""The review's reply format: the JSON schema asked for, and a robust parser for what comes back.

One reply carries the per-draft scores and the analysis across drafts (analysis_parser.py). A
reply cut off by its token limit keeps every entry it completed (json_repair.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..redaction import redact
from .analysis_parser import analysis_properties, parse_analysis
from .json_repair import load_truncated
from .result import Analysis, Scores
from .review_fields import field as _field
from .review_fields import normalize_label as _normalize_label
from .review_fields import text_of

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


def review_schema(labels: list[str], *, analysis: bool = True) -> dict[str, Any]:
    """Scores first (one required entry per draft label, so that a provider that enforces schemas,
    llama.cpp grammars or OpenAI structured output, cannot leave a draft unscored, and so that a
    reply cut short keeps its scores), then the analysis."""
    scores = {
        "type": "object",
        "properties": {label: _DRAFT_REVIEW_SCHEMA for label in labels},
        "required": list(labels),
        "additionalProperties": False,
    }
    properties = {"scores": scores, **(analysis_properties(labels) if analysis else {})}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


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
# A review is a few hundred tokens per draft; past this many characters the rest is not read (the
# cut value is repaired like a reply that hit its token limit), so no reply's size sets the cost.
MAX_REVIEW_CHARS = 100_000


class ReviewParseError(ValueError):
    pass


def _json_candidates(text: str) -> list[tuple[Any, bool]]:
    """Every JSON value that can be read from the text, and whether it was repaired: fenced blocks
    first, then the complete entries of a cut-off value, then embedded objects."""
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    found: list[tuple[Any, bool]] = []
    decoder = json.JSONDecoder()
    for source in sources:
        repaired = load_truncated(_TRAILING_COMMA.sub(r"\1", source))
        if repaired is not None:
            found.append((repaired, True))
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
                found.append((value, False))
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
    marks["reason"] = text_of(_field(item, _REASON)) or ""
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



def _scale(marks: list[dict[str, Any]]) -> float:
    """Reviewers mix scales: 0-1, 0-10 and 0-100 are all seen. Find a factor to 0-10."""
    values = [m[k] for m in marks for k in ("consistency", "accuracy", "completeness")]
    top = max(values, default=0)
    if top > 10:
        return 0.1
    if 0 < top <= 1 and all(0 <= v <= 1 for v in values) and any(0 < v < 1 for v in values):
        return 10.0
    return 1.0


@dataclass
class ReviewReading:
    """What one review reply says: scores by label, the analysis if any, and whether the reply had
    to be repaired (it was cut off, so later entries are missing)."""

    scores: dict[str, Scores]
    analysis: Analysis | None = None
    repaired: bool = False


def _scores(parsed: dict[str, dict[str, Any]]) -> dict[str, Scores]:
    factor = _scale(list(parsed.values()))
    return {
        label: Scores(
            consistency=min(10.0, max(0.0, marks["consistency"] * factor)),
            accuracy=min(10.0, max(0.0, marks["accuracy"] * factor)),
            completeness=min(10.0, max(0.0, marks["completeness"] * factor)),
            reason=marks["reason"],
        )
        for label, marks in parsed.items()
    }


def read_review(text: str, labels: list[str]) -> ReviewReading:
    """Scores and analysis; raises ReviewParseError, and nothing else, when no draft's scores can be read.
    Linear in the reply, of which MAX_REVIEW_CHARS are read: a hostile reply costs milliseconds."""
    try:
        return _read(text[:MAX_REVIEW_CHARS], labels)
    except ReviewParseError:
        raise
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:  # a shape no reviewer meant
        raise ReviewParseError(f"unreadable review ({type(exc).__name__}): {_snippet(text)!r}") from None


def _snippet(text: str) -> str:
    """The reply's start for an error message: redacted before it is cut, so no cut hides a key's head."""
    return redact(text.strip()[:1000]).replace("\n", " ")[:120]


def _read(text: str, labels: list[str]) -> ReviewReading:
    wanted = set(labels)
    for candidate, repaired in _json_candidates(text):
        parsed: dict[str, dict[str, Any]] = {}
        for raw_label, item in _items(candidate):
            label = _normalize_label(raw_label, wanted)
            marks = _scores_from_item(item)
            if label and marks and label not in parsed:
                parsed[label] = marks
        if parsed:
            return ReviewReading(_scores(parsed), parse_analysis(candidate, labels), repaired)
    raise ReviewParseError(f"no scores for drafts {', '.join(labels)} in the review: {_snippet(text)!r}")


def parse_review(text: str, labels: list[str]) -> dict[str, Scores]:
    """Scores by draft label; raises ReviewParseError when no draft's scores can be read."""
    return read_review(text, labels).scores
