"""Keep API keys out of every string the package shows: model text, errors, logs, results, caches.

A key is matched whole, and so is any piece of it of PIECE_LEN characters or more, so that a key an
upstream echoes, cut or split, still does not get through. Text from a provider is redacted once, at
the boundary where it enters a run (fusion/calls.py, providers/http_client.py), before it is cut or stored.
"""

from __future__ import annotations

import os
import re

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
_BLOCK = (PIECE_LEN + 1) // 2  # any PIECE_LEN-long piece contains one whole block at a multiple of it
MARKER = "[redacted]"


def register_secret_env(name: str) -> None:
    _SECRET_ENV.add(name)


def register_secret_value(value: str) -> None:
    if len(value) >= _MIN_SECRET_LEN:
        _SECRET_VALUES.add(value)


def secret_values() -> list[str]:
    values = set(_SECRET_VALUES)
    for name, value in os.environ.items():
        if (name in _SECRET_ENV or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET_LEN:
            values.add(value)
    return sorted(values, key=len, reverse=True)


_index_for: tuple[str, ...] = ()
_index: dict[str, list[tuple[str, int]]] = {}


def _blocks(values: list[str]) -> dict[str, list[tuple[str, int]]]:
    """Each key's aligned blocks -> (key, offset): a piece of a key is found by its block, then grown."""
    global _index_for, _index
    if tuple(values) != _index_for:
        index: dict[str, list[tuple[str, int]]] = {}
        for key in values:
            if len(key) >= PIECE_LEN:
                for offset in range(0, len(key) - _BLOCK + 1, _BLOCK):
                    index.setdefault(key[offset:offset + _BLOCK], []).append((key, offset))
        _index_for, _index = tuple(values), index
    return _index


def _piece_spans(text: str, index: dict[str, list[tuple[str, int]]]) -> list[tuple[int, int]]:
    """(start, end) of every run of text that matches PIECE_LEN or more characters of a key."""
    spans = []
    for block, places in index.items():
        at = text.find(block)
        while at >= 0:
            for key, offset in places:
                left = 0
                while left < offset and at - left > 0 and text[at - left - 1] == key[offset - left - 1]:
                    left += 1
                right = 0
                end = at + _BLOCK
                while offset + _BLOCK + right < len(key) and end + right < len(text) \
                        and text[end + right] == key[offset + _BLOCK + right]:
                    right += 1
                if left + _BLOCK + right >= PIECE_LEN:
                    spans.append((at - left, end + right))
            at = text.find(block, at + 1)
    return spans


def redact(text: str) -> str:
    """Replace every secret from the environment, and every long enough piece of one, with a marker."""
    if not text:
        return text
    values = secret_values()
    for value in values:  # whole keys, short ones included
        if value in text:
            text = text.replace(value, MARKER)
    spans = _piece_spans(text, _blocks(values))
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
