"""Reading JSON that was cut off mid-way (a reply that hit its token limit): keep what is complete.

A cut can only fall where every entry before it is whole: right after a closed object or array,
after a string that is an array element, or right after an opening bracket, and never inside an
object that is itself an array element (a list entry is whole or dropped; a mapping such as the
scores by label may keep its whole members). The last such point is kept and the brackets still
open are closed, so a half-written entry is dropped, not guessed.
"""

from __future__ import annotations

import json
from typing import Any

_CLOSER = {"{": "}", "[": "]"}


def _whole(stack: list[str]) -> bool:
    """No open object sits inside an open array: closing here cuts no list entry in half."""
    return "[" not in stack or "{" not in stack[stack.index("[") :]


def close_truncated(text: str) -> str | None:
    """The longest prefix of the first JSON value in `text` that can be closed into valid JSON,
    closed; None when the value is complete (nothing to repair) or nothing can be kept."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    stack: list[str] = []
    in_string = escaped = False
    cut: tuple[int, tuple[str, ...]] | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if stack and stack[-1] == "[" and _whole(stack):
                    cut = (i + 1, tuple(stack))
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
            if _whole(stack):
                cut = (i + 1, tuple(stack))
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None  # the value closed: it is not truncated
            if _whole(stack):
                cut = (i + 1, tuple(stack))
    if cut is None:
        return None
    end, open_brackets = cut
    return text[start:end] + "".join(_CLOSER[b] for b in reversed(open_brackets))


def load_truncated(text: str) -> Any | None:
    """The complete entries of a cut-off JSON value, or None when there is nothing to repair."""
    closed = close_truncated(text)
    if closed is None:
        return None
    try:
        return json.loads(closed)
    except json.JSONDecodeError:
        return None
