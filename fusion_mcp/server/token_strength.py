"""How hard a bearer token is to guess, roughly, in bits: enough to refuse the tokens people type
(`password12345678`, `0123456789abcdef`) and to pass any random one (`secrets.token_urlsafe(32)`
is about 256 bits, `secrets.token_hex(16)` about 165).

Each character counts log2 of the alphabet its classes span (lower case, upper case, digits,
symbols), except that a common word, a run (`aaaa`, `1234`, `fedc`) or a repeat of an earlier
stretch counts about as much as one character: a guesser tries those first.
"""

from __future__ import annotations

import math
import string

MIN_TOKEN_BITS = 64
_WORDS = ("password", "passwd", "pass", "secret", "token", "admin", "letmein", "qwerty", "asdf", "welcome",
          "changeme", "default", "test", "login", "master", "hello", "dragon", "monkey", "iloveyou", "fusion",
          "mcp", "server", "bearer", "auth", "key", "abc", "xyz")
_CLASSES = ((string.ascii_lowercase, 26), (string.ascii_uppercase, 26), (string.digits, 10))


def _alphabet(token: str) -> int:
    size = sum(n for chars, n in _CLASSES if any(ch in chars for ch in token))
    if any(not ch.isascii() or not ch.isalnum() for ch in token):
        size += 33
    return max(size, 2)


def _run_length(token: str, i: int) -> int:
    """Length of the run starting at i whose code points step by -1, 0 or +1."""
    if i + 1 >= len(token):
        return 1
    step = ord(token[i + 1]) - ord(token[i])
    if step not in (-1, 0, 1):
        return 1
    j = i + 1
    while j + 1 < len(token) and ord(token[j + 1]) - ord(token[j]) == step:
        j += 1
    return j - i + 1


def _repeat_length(token: str, i: int) -> int:
    """Length of the longest stretch starting at i that already appeared before i (4 or more)."""
    n = 4
    while i + n <= len(token) and token[i:i + n] in token[:i + n - 1]:
        n += 1
    return n - 1 if n > 4 else 0


def token_bits(token: str) -> float:
    per_char = math.log2(_alphabet(token))
    low = token.lower()
    bits, i = 0.0, 0
    while i < len(token):
        word = max((w for w in _WORDS if low.startswith(w, i)), key=len, default="")
        run = _run_length(token, i)
        repeat = _repeat_length(token, i)
        if len(word) >= max(3, run, repeat):
            bits += math.log2(len(_WORDS)) + 1
            i += len(word)
        elif run >= 3 and run >= repeat:
            bits += per_char + math.log2(run)
            i += run
        elif repeat:
            bits += math.log2(i + 1) + math.log2(repeat)
            i += repeat
        else:
            bits += per_char
            i += 1
    return bits
