"""Keep a run's internal markup out of every text that leaves it.

The drafts and the analysis reach the reviewer and the synthesizer between tags carrying a marker
(delimit.py). A model that echoes its prompt, or copies a closing tag, would put them into the answer:
`</draft-50d90518912f>` and, at a cut, `<draft-50d9051891`. `scrub` removes whole tags, a tag cut off at
the end of the text, and any copy of the run's markers; `StreamScrubber` does the same to a stream,
holding back a tail that may be the start of a tag until the next piece tells.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# A whole tag; its marker may already be gone (`<draft- label="A">`), since markers are removed too.
_TAG = re.compile(r"</?(?:draft|analysis|source)-(?:[0-9a-f]{4,})?(?:[ \t][^>\n]{0,200})?>", re.IGNORECASE)
_OPEN_TAG = re.compile(r"(?:draft|analysis|source)-[0-9a-f]*(?:[ \t][^>\n]*)?")
_NAMES = ("draft-", "analysis-", "source-")
_MIN_MARKER_PREFIX = 6  # a cut copy of a marker at the end: at least this many of its characters
_HOLD = 240  # the longest tail held back in a stream (a tag with its attributes fits)


def _cut_tag_at(text: str, lone: bool = False) -> int | None:
    """Where a tag cut off at the end of `text` starts, if it ends with one (with `lone`, a bare `<`
    counts: in a stream the next piece may go on with a tag)."""
    at = text.rfind("<")
    if at < 0 or ">" in text[at:] or len(text) - at > _HOLD:
        return None
    tail = text[at + 1:].removeprefix("/").lower()
    if not tail and lone:
        return at
    if tail and any(name.startswith(tail) for name in _NAMES):
        return at
    return at if _OPEN_TAG.fullmatch(tail) else None


def _cut_marker_at(text: str, markers: Iterable[str], shortest: int = _MIN_MARKER_PREFIX) -> int | None:
    """Where a copy of a marker cut off at the end of `text` starts (at least `shortest` characters)."""
    found = re.search(r"[0-9a-f]{1,64}$", text[-64:])
    if not found:
        return None
    tail = found.group(0)
    markers = list(markers)
    longest = max((len(m) for m in markers), default=0)
    for start in range(max(0, len(tail) - longest), len(tail)):  # the earliest start, whichever marker
        piece = tail[start:]
        if len(piece) >= shortest and any(len(piece) <= len(m) and m.startswith(piece) for m in markers):
            return len(text) - len(tail) + start
    return None


def scrub(text: str, markers: Iterable[str] = ()) -> str:
    """`text` without any marker tag (whole, or cut off at its end) and without the markers given."""
    markers = [m for m in markers if m]
    out = text
    for m in markers:
        out = out.replace(m, "")
    out = _TAG.sub("", out)
    while True:
        cut = _cut_tag_at(out)
        if cut is None:
            cut = _cut_marker_at(out, markers)
        if cut is None:
            break
        out = out[:cut]
    return out.strip() if out != text else out


def held_from(text: str, markers: Iterable[str]) -> int:
    """Where the part of a stream's text that may still become a tag or a marker starts: any hex tail
    that begins a marker waits, since its next characters may arrive in the next piece."""
    cuts = [c for c in (_cut_tag_at(text, lone=True), _cut_marker_at(text, markers, 1)) if c is not None]
    return min(cuts) if cuts else len(text)


class StreamScrubber:
    """Passes a stream on to `on_text` with the run's markup removed, even when a tag is split across
    pieces: text that could be the start of one waits until the next piece (or `close`) settles it."""

    def __init__(self, on_text: Callable[[str], None], markers: Iterable[str]) -> None:
        self._on_text = on_text
        self._markers = [m for m in markers if m]
        self._pending = ""

    def write(self, piece: str) -> None:
        text = self._pending + piece
        for m in self._markers:
            text = text.replace(m, "")
        text = _TAG.sub("", text)
        cut = held_from(text, self._markers)
        ready, self._pending = text[:cut], text[cut:]
        if ready:
            self._on_text(ready)

    def reset(self) -> None:
        """A retry starts the text over."""
        self._pending = ""

    def close(self) -> None:
        """The stream ended: a tag still open was cut, and is dropped."""
        rest = scrub(self._pending, self._markers)
        self._pending = ""
        if rest:
            self._on_text(rest)
