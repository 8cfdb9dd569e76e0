"""Small readers shared by the review's score and analysis parsers: keys by alias, draft labels."""

from __future__ import annotations

import re
from typing import Any

from ..redaction import redact

MAX_TEXT = 500  # characters kept of any one reason, point or stance
# A placeholder of the prompt's example shape copied back (`<one sentence>`, `<topic>`): small
# models do that, and it says nothing.
_PLACEHOLDER = re.compile(r"<[^<>]*>|\.\.\.|…")


def field(item: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of `names` present, matching keys case-insensitively."""
    lowered = {str(k).lower(): v for k, v in item.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def normalize_label(raw: Any, labels: set[str]) -> str | None:
    """`A`, `"a"`, `Draft A`, `response_b` → the label, when it is one of `labels`."""
    text = str(raw).strip().strip('"').upper()
    if text in labels:
        return text
    match = re.fullmatch(r"(?:DRAFT|RESPONSE|ANSWER)?[\s_\-]*([A-Z])", text)
    if match and match.group(1) in labels:
        return match.group(1)
    return None


def text_of(value: Any) -> str | None:
    """A non-empty string, redacted (JSON decoding may have revealed a key that was written as
    escapes), then shortened; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or _PLACEHOLDER.fullmatch(value.strip()):
        return None
    return redact(value.strip()[:4 * MAX_TEXT])[:MAX_TEXT]
