"""Judging criteria: what the reviewer and the synthesizer should weigh for this kind of question.

An ensemble's `criteria` (or a call's) is either a preset name, whose text is
`prompts/criteria_<name>.txt`, or free text used as written. The `safety` preset also asks the
reviewer for the risks the question and the drafts carry (`analysis.risks`).
"""

from __future__ import annotations

from ..prompts import render

PRESETS = ("code", "safety", "research")
MAX_CHARS = 2000


def criteria_text(criteria: str | None) -> str | None:
    """The text the prompts carry for `criteria` (a preset's, or the free text), None when none."""
    if criteria is None or not criteria.strip():
        return None
    name = criteria.strip().lower()
    return render(f"criteria_{name}") if name in PRESETS else criteria.strip()


def asks_risks(criteria: str | None) -> bool:
    """The safety preset adds a `risks` list to the review."""
    return criteria is not None and criteria.strip().lower() == "safety"


def check_criteria(criteria: str) -> str | None:
    """Why a criteria value cannot be used (one line), or None when it can."""
    if not criteria.strip():
        return "criteria must not be empty: name a preset (" + ", ".join(PRESETS) + ") or write what to weigh"
    if len(criteria) > MAX_CHARS:
        return f"criteria is {len(criteria)} characters; keep it under {MAX_CHARS}"
    return None


def check_call_criteria(criteria: str | None) -> None:
    """A call's `criteria` argument, refused with a one-line InputError when it cannot be used."""
    if criteria is None:
        return
    problem = check_criteria(criteria)
    if problem:
        from ..errors import InputError

        raise InputError(problem)
