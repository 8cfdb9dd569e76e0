"""What a run checks of its caller's input before any model sees it: one clear error, no wasted calls."""

from __future__ import annotations

import math
import unicodedata

from ..errors import InputError


def _not_utf8(what: str, text: str) -> None:
    """Text that cannot be encoded as UTF-8: bytes a terminal passed through undecoded, lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        ch = ord(text[exc.start])
        shown = f"byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF else f"code point U+{ch:04X}"
        raise InputError(f"the {what} is not valid UTF-8 text ({shown} at character {exc.start}): "
                         "pass it as UTF-8") from None


def _no_text(text: str) -> bool:
    """Nothing a model could read: only white space, NULs and other control or format characters."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
               for ch in text)


def check_input(question: str, context: str | None, deadline_s: float | None) -> None:
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is blank: ask something")
    if _no_text(question):
        raise InputError("the question holds only control characters (NUL and the like), no text: ask something")
    _not_utf8("question", question)
    if context is not None:
        _not_utf8("context", context)
    if deadline_s is not None and not (math.isfinite(deadline_s) and deadline_s > 0):
        raise InputError(f"the deadline must be a finite number of seconds above 0, not {deadline_s}")
