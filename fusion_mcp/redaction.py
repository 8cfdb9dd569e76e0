"""Keep API keys out of every string the package shows: model text, errors, logs, results, caches.

A key is matched whole, and so is any piece of it of PIECE_LEN characters or more, so that a key an
upstream echoes, cut or split, still does not get through. Pieces of GROUP_LEN characters or more
that continue one another across a few separator characters (`sk-or-v1 0f9e8d7c 6b5a4938`, or
`"sk-or-v1" + "0f9e8d7c"`) count as one piece. The text is also read with its escapes decoded (JSON
`\\u0041` and `\\/`, `\\x41`, URL `%41`, HTML `&#65;`, twice over for an escaped escape), and each
key's base64 is a key too (redaction_encodings.py). Text from a provider is redacted once, at the
boundary where it enters a run (fusion/calls.py, providers/http_client.py), before it is cut or stored;
what a parser decodes from it is redacted again (fusion/review_parser.py, config/model_catalog.py).
"""

from __future__ import annotations

import os
import re

from .redaction_encodings import DecodedView, derived_values

# Variables whose values are secrets wherever they appear. Ensemble files add their own
# `api_key_env` names through `register_secret_env`; `register_secret_value` adds a value given
# another way (a token passed with --auth-token).
_SECRET_ENV: set[str] = {
    "OPENROUTER_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "FUSION_MCP_AUTH_TOKEN",
}
_SECRET_VALUES: set[str] = set()
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
_MIN_SECRET_LEN = 6
PIECE_LEN = 12  # a piece this long of a key is as good as a leak: it narrows a guess to nothing
GROUP_LEN = 8  # pieces this long that continue one another across separators are joined
_BLOCK = GROUP_LEN // 2  # any GROUP_LEN-long piece contains one whole block at a multiple of it
_GAP = re.compile(r"[^0-9A-Za-z]{0,8}")  # what may stand between two groups of a split key
MARKER = "[redacted]"


def register_secret_env(name: str) -> None:
    _SECRET_ENV.add(name)


def register_secret_value(value: str) -> None:
    if len(value) >= _MIN_SECRET_LEN:
        _SECRET_VALUES.add(value)


def secret_values() -> list[str]:
    """The secrets themselves (not their encodings), longest first."""
    values = set(_SECRET_VALUES)
    for name, value in os.environ.items():
        if (name in _SECRET_ENV or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET_LEN:
            values.add(value)
    return sorted(values, key=len, reverse=True)


_index_for: tuple[str, ...] = ()
_index: tuple[list[str], dict[str, list[tuple[str, int]]]] = ([], {})


def _patterns(values: list[str]) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Every value to find (the secrets and their encodings), and each one's aligned blocks ->
    (value, offset): a piece of a value is found by its block, then grown."""
    global _index_for, _index
    if tuple(values) != _index_for:
        wanted = sorted(set(values) | {d for v in values for d in derived_values(v, PIECE_LEN)}, key=len, reverse=True)
        index: dict[str, list[tuple[str, int]]] = {}
        for key in wanted:
            if len(key) >= GROUP_LEN:
                for offset in range(0, len(key) - _BLOCK + 1, _BLOCK):
                    index.setdefault(key[offset:offset + _BLOCK], []).append((key, offset))
        _index_for, _index = tuple(values), (wanted, index)
    return _index


# (start, end) in the text, (start, end) in the value, the value
_Segment = tuple[int, int, int, int, str]


def _segments(text: str, index: dict[str, list[tuple[str, int]]]) -> set[_Segment]:
    """Every maximal run of text that matches a run of a value and holds one of its blocks."""
    found: set[_Segment] = set()
    seen: dict[tuple[str, int], int] = {}  # (value, where it would start) -> end of the segment found there
    for block, places in index.items():
        at = text.find(block)
        while at >= 0:
            for key, offset in places:
                if seen.get((key, at - offset), -1) >= at + _BLOCK:
                    continue  # inside a segment already grown: a key repeated costs one growth per copy
                left = 0
                while left < offset and at - left > 0 and text[at - left - 1] == key[offset - left - 1]:
                    left += 1
                right = 0
                end = at + _BLOCK
                while offset + _BLOCK + right < len(key) and end + right < len(text) \
                        and text[end + right] == key[offset + _BLOCK + right]:
                    right += 1
                found.add((at - left, end + right, offset - left, offset + _BLOCK + right, key))
                seen[(key, at - offset)] = end + right
            at = text.find(block, at + 1)
    return found


def _piece_spans(text: str, index: dict[str, list[tuple[str, int]]]) -> list[tuple[int, int]]:
    """(start, end) of every run of text that holds PIECE_LEN or more characters of a value, in one
    piece or in groups of GROUP_LEN+ that continue one another across a short separator."""
    segments = sorted(_segments(text, index))
    spans = [(s[0], s[1]) for s in segments if s[1] - s[0] >= PIECE_LEN]
    starting: dict[int, list[_Segment]] = {}
    for s in segments:
        if s[1] - s[0] >= GROUP_LEN:
            starting.setdefault(s[0], []).append(s)
    followers: set[_Segment] = set()
    for group in (s for at in sorted(starting) for s in starting[at]):
        if group in followers:
            continue  # already inside a chain that started earlier
        chain, covered = [group], group[3] - group[2]
        while (nxt := _follower(text, chain[-1], starting)) is not None:
            followers.add(nxt)
            covered += nxt[3] - chain[-1][3]
            chain.append(nxt)
        if len(chain) > 1 and covered >= PIECE_LEN:
            spans.append((chain[0][0], chain[-1][1]))
    return spans


def _follower(text: str, last: _Segment, starting: dict[int, list[_Segment]]) -> _Segment | None:
    """The group that continues `last` in the same value, after a gap of separators only."""
    for at in range(last[1], last[1] + 9):
        for s in starting.get(at, ()):
            if s[4] == last[4] and last[2] < s[2] <= last[3] < s[3] and _GAP.fullmatch(text, last[1], at):
                return s
    return None


def _whole_spans(text: str, values: list[str]) -> list[tuple[int, int]]:
    spans = []
    for value in values:  # whole keys, short ones included
        at = text.find(value)
        while at >= 0:
            spans.append((at, at + len(value)))
            at = text.find(value, at + len(value))
    return spans


def _spans(text: str, values: list[str], index: dict[str, list[tuple[str, int]]]) -> list[tuple[int, int]]:
    return _whole_spans(text, values) + _piece_spans(text, index)


def redact(text: str) -> str:
    """Replace every secret from the environment, every long enough piece of one, and each of
    their encodings, with a marker."""
    if not text:
        return text
    values, index = _patterns(secret_values())
    if not values:
        return text
    for value in values:  # whole keys first (short ones included): cheap, and the rest is searched less
        if value in text:
            text = text.replace(value, MARKER)
    spans = _spans(text, values, index)
    view = DecodedView.of(text)
    while view is not None:  # the same text with its escapes decoded, mapped back to the original
        spans += [view.original(start, end) for start, end in _spans(view.text, values, index)]
        view = view.deeper()
    if not spans:
        return text
    spans.sort()
    out, last = [], 0
    for start, end in spans:
        if end <= last:
            continue
        if start < last:
            start = last
        else:
            out.append(text[last:start] + MARKER)
        last = end
    out.append(text[last:])
    return "".join(out)


def carries_secret(text: str) -> bool:
    """Whether redaction would change the text: a value that must not be shown or used at all."""
    return redact(text) != text
