"""Whether the drafts already agree on the final answer, so that a review has nothing to weigh."""

from __future__ import annotations

import re

from .result import Draft

_ANSWER_LINE = re.compile(r"^[ \t*#>_-]*(?:final[ \t]+)?answer[ \t*]*[:=][ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)
_SHORT_WORDS = 12


def final_answer(text: str) -> str | None:
    """The answer a draft ends on: its last `Answer: …` line, or the whole text when it is short;
    normalized (case, emphasis, trailing punctuation). None when a long draft names no answer."""
    found = _ANSWER_LINE.findall(text)
    candidate = found[-1] if found else (text if len(text.split()) <= _SHORT_WORDS else None)
    if candidate is None:
        return None
    norm = re.sub(r"[*_`$]", "", candidate).strip().rstrip(".!").strip().lower()
    return " ".join(norm.split()) or None


def unanimous(drafts: list[Draft]) -> str | None:
    """The answer every ok draft gives (at least two of them), else None."""
    ok = [d for d in drafts if d.status == "ok"]
    answers = {final_answer(d.text or "") for d in ok}
    if len(ok) < 2 or len(answers) != 1:
        return None
    return answers.pop()
