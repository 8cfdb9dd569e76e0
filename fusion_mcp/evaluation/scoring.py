"""Answer extraction and scoring: numeric match, choice letter, normalized exact match.

Extraction returns a canonical answer (a number's shortest form, a letter, normalized text) so that
answers from different drafts can be compared and counted (the vote), or None when nothing can be
extracted; None is always scored wrong and reported as unparseable.
"""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation

from .datasets import LETTERS, Item

# "Answer: X", "Final answer: X", "**Answer:** X"; the last such line wins.
# No two unbounded runs of spaces may meet (as `\s*(?:is)?\s*` did): on a line of spaces that
# backtracks quadratically. Each optional word carries its own trailing spaces instead.
_MARKER = re.compile(r"(?:final\s+)?answer\s*(?:is\s*)?[:=]\s*(?:\*+\s*)?(.+)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\b(?:the\s+)?(?:correct\s+|final\s+)?answer\s+is\s*(?::\s*)?(.+)", re.IGNORECASE)
_NUM = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def _marked(text: str) -> str | None:
    """The text after the last 'Answer:' marker (or 'the answer is'), if any."""
    found: str | None = None
    for line in text.splitlines():
        m = _MARKER.search(line) or _ANSWER_IS.search(line)
        if m and m.group(1).strip(" *"):
            found = m.group(1).strip(" *")
    return found


def canonical_number(text: str) -> str | None:
    """'1,000' → '1000', '$18.00' → '18', '3/4' → '0.75'; None when it is not a number."""
    t = text.replace(",", "").replace("$", "").replace(" ", "").rstrip("%.")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = Decimal(num) / Decimal(den)
        else:
            value = Decimal(t)
    except (InvalidOperation, ZeroDivisionError, ValueError):
        return None
    try:
        value = value.quantize(Decimal("1e-6"))  # 1/3 and 0.333333 compare equal
    except InvalidOperation:  # too many digits to round: keep as is
        pass
    out = format(value.normalize(), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return "0" if out in ("-0", "") else out


def _extract_number(text: str) -> str | None:
    marked = _marked(text)
    if marked:
        m = _NUM.search(marked)
        if m:
            return canonical_number(m.group(0))
    numbers = _NUM.findall(text)  # no marker: the last number in the reply, as GSM8K graders do
    return canonical_number(numbers[-1]) if numbers else None


def _letter_in(segment: str, n: int, *, marked: bool) -> str | None:
    """A lone option letter: 'B', '(B)', 'B.', 'B)'; after an Answer marker also 'B blue' and 'b)'."""
    valid = LETTERS[:n]
    seg = segment.strip().lstrip("*_ ")
    m = re.match(rf"^\(?([{valid}])\)?(?:[.):,*]|$)", seg)
    if not m and marked:
        m = re.match(rf"^\(?([{valid}])\)?(?:\s|$)", seg) or re.match(
            rf"^\(?([{valid.lower()}])\)?(?:[.):]|$)", seg)
    if not m:
        m = re.search(rf"\b(?:option|choice)\s*\(?([{valid}])\)?(?:\W|$)", seg, re.IGNORECASE)
    return m.group(1).upper() if m else None


def _norm(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _extract_choice(text: str, item: Item) -> str | None:
    n = len(item.choices)
    marked = _marked(text)
    if marked:
        letter = _letter_in(marked, n, marked=True)
        if letter:
            return letter
    letter = _letter_in(text, n, marked=False)  # a reply that is just "B" or starts with "B. ..."
    if letter:
        return letter
    # No letter: accept the text of exactly one option, in the marked answer or the whole reply.
    for segment in [marked, text]:
        if not segment:
            continue
        norm = _norm(segment)
        hits = [i for i, c in enumerate(item.choices) if _norm(c) and _norm(c) in norm]
        if len(hits) == 1:
            return LETTERS[hits[0]]
        if len(hits) > 1 and segment is marked:
            exact = [i for i in hits if _norm(item.choices[i]) == norm]
            if len(exact) == 1:
                return LETTERS[exact[0]]
    return None


def _extract_text(text: str) -> str | None:
    marked = _marked(text)
    if marked is None:
        lines = [line for line in text.splitlines() if line.strip()]
        marked = lines[-1] if lines else None
    if marked is None:
        return None
    norm = _norm(marked)
    return norm or None


def extract(text: str | None, item: Item) -> str | None:
    """The canonical answer in a reply, or None when none can be extracted."""
    if not text or not text.strip():
        return None
    if item.answer_type == "number":
        return _extract_number(text)
    if item.answer_type == "choice":
        return _extract_choice(text, item)
    return _extract_text(text)


def gold(item: Item) -> set[str]:
    """The canonical answers that count as right."""
    if item.answer_type == "number":
        return {g for g in (canonical_number(a) for a in (item.answer, *item.aliases)) if g is not None}
    if item.answer_type == "choice":
        return {item.answer}
    return {_norm(a) for a in (item.answer, *item.aliases)}


def is_correct(prediction: str | None, item: Item) -> bool:
    return prediction is not None and prediction in gold(item)
