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
MAX_DEPTH = 200  # no review nests deeper than a few levels; past this depth the value is read as cut


class _Brackets:
    """The open brackets, with what `whole` needs kept up to date at each push and pop, so that a
    reply of a hundred thousand brackets is read in one linear pass (rescanning the stack at every
    bracket took seconds at 40,000)."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self._first_array: int | None = None  # depth of the outermost open `[`
        self._objects_inside = 0  # open `{` above it

    def push(self, ch: str) -> None:
        if ch == "[" and self._first_array is None:
            self._first_array = len(self.stack)
        elif ch == "{" and self._first_array is not None:
            self._objects_inside += 1
        self.stack.append(ch)

    def pop(self) -> None:
        ch = self.stack.pop()
        depth = len(self.stack)
        if ch == "[" and depth == self._first_array:
            self._first_array = None
        elif ch == "{" and self._first_array is not None and depth > self._first_array:
            self._objects_inside -= 1

    @property
    def whole(self) -> bool:
        """No open object sits inside an open array: closing here cuts no list entry in half."""
        return self._first_array is None or self._objects_inside == 0


def _scan(text: str, start: int, end: int) -> tuple[int | None, list[str], bool]:
    """(the last point where the value can be cut and closed, the brackets open at `end`, whether
    the value closed before `end`)."""
    brackets = _Brackets()
    in_string = escaped = False
    cut: int | None = None
    for i in range(start, end):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if brackets.stack and brackets.stack[-1] == "[" and brackets.whole:
                    cut = i + 1
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            if len(brackets.stack) >= MAX_DEPTH:
                break  # read as if cut here: what came before is kept
            brackets.push(ch)
            if brackets.whole:
                cut = i + 1
        elif ch in "}]":
            if not brackets.stack:
                return None, [], True
            brackets.pop()
            if not brackets.stack:
                return None, [], True  # the value closed: it is not truncated
            if brackets.whole:
                cut = i + 1
    return cut, brackets.stack, False


def close_truncated(text: str) -> str | None:
    """The longest prefix of the first JSON value in `text` that can be closed into valid JSON,
    closed; None when the value is complete (nothing to repair) or nothing can be kept."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    cut, _, closed = _scan(text, start, len(text))
    if closed or cut is None:
        return None
    _, open_brackets, _ = _scan(text, start, cut)  # a second pass, to the cut: still linear
    return text[start:cut] + "".join(_CLOSER[b] for b in reversed(open_brackets))


def load_truncated(text: str) -> Any | None:
    """The complete entries of a cut-off JSON value, or None when there is nothing to repair."""
    closed = close_truncated(text)
    if closed is None:
        return None
    try:
        return json.loads(closed)
    except (json.JSONDecodeError, RecursionError):
        return None
