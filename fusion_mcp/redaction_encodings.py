"""The ways a key is written other than as itself, for redaction.py: escaped text read decoded, and
the key's base64.

A model or an upstream that writes a key as JSON escapes (`\\u0073k-...`), URL-encoded (`%73k-...`)
or as HTML character references hides it from a plain search; `DecodedView` is the text with those
escapes decoded plus a map from every position back to the original, so that what is found decoded
is cut out of the original. A base64 encoding of a key does not contain the key at all, so each
alignment of it (the key starting at byte 0, 1 or 2 of a base64 group) is searched for as a key.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_right

_ESCAPE = re.compile(
    r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|%([0-9a-fA-F]{2})|&#(\d{1,7});|&#[xX]([0-9a-fA-F]{1,6});|\\([/\\\"'])"
)
_MAX_DEPTH = 2  # an escape escaped once more (`%5Cu0073`) is read too; deeper is out of reach


def _char(match: re.Match[str]) -> str | None:
    hex4, hex2, pct, dec, hexn, plain = match.groups()
    if plain is not None:
        return plain
    code = int(hex4 or hex2 or pct or hexn, 16) if dec is None else int(dec)
    return chr(code) if code < 0x110000 else None


class DecodedView:
    """A text with its escapes decoded, and the way back from a span of it to the original's."""

    def __init__(self, text: str, escapes: list[tuple[int, int, int]], parent: DecodedView | None,
                 depth: int) -> None:
        self.text = text
        self._escapes = escapes  # (position here, start there, end there) of each decoded escape
        self._starts = [e[0] for e in escapes]
        self._parent = parent
        self._depth = depth

    @classmethod
    def of(cls, text: str, parent: DecodedView | None = None, depth: int = 1) -> DecodedView | None:
        """The decoded view, or None when the text has no escape to decode."""
        if "\\" not in text and "%" not in text and "&#" not in text:
            return None
        parts: list[str] = []
        escapes: list[tuple[int, int, int]] = []
        last = here = 0
        for m in _ESCAPE.finditer(text):
            ch = _char(m)
            if ch is None:
                continue
            parts.append(text[last:m.start()])
            here += m.start() - last
            escapes.append((here, m.start(), m.end()))
            parts.append(ch)
            here += 1
            last = m.end()
        if not escapes:
            return None
        parts.append(text[last:])
        return cls("".join(parts), escapes, parent, depth)

    def deeper(self) -> DecodedView | None:
        """This view decoded once more (an escaped escape), within the depth read."""
        return DecodedView.of(self.text, self, self._depth + 1) if self._depth < _MAX_DEPTH else None

    def _start(self, at: int) -> int:
        k = bisect_right(self._starts, at) - 1
        if k < 0:
            return at
        here, start, end = self._escapes[k]
        return start if at == here else end + (at - here - 1)

    def _end(self, at: int) -> int:
        if at <= 0:
            return 0
        k = bisect_right(self._starts, at - 1) - 1
        if k < 0:
            return at
        here, _, end = self._escapes[k]
        return end + (at - here - 1)

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that span [start, end) of this view was decoded from."""
        span = (self._start(start), self._end(end))
        return self._parent.original(*span) if self._parent is not None else span


def derived_values(key: str, min_len: int) -> list[str]:
    """Encodings of a key to search for as keys themselves: its base64 (standard and URL-safe,
    padded or not) at each of the three alignments it can take inside a longer base64 text, with
    the characters that depend on its neighbours left out."""
    raw = key.encode("utf-8")
    out: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        head = 0 if shift == 0 else 4  # the group that mixes the neighbour's bytes with the key's
        tail = (len(raw) + shift) % 3  # a last partial group depends on what follows
        body = encoded[head:len(encoded) - (4 if tail else 0)] if tail or head else encoded
        for text in (body, encoded.rstrip("=") if shift == 0 else ""):
            if len(text) >= min_len:
                out.add(text)
                out.add(text.replace("+", "-").replace("/", "_"))
    return sorted(out)
