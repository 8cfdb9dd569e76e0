"""Wrap untrusted draft text so that it cannot close its delimiter and pose as instructions.

Each prompt gets a fresh random marker; a draft cannot guess it, and any copy of it inside a draft
is removed, so the only tags carrying the marker are the ones written here.
"""

from __future__ import annotations

import re
import secrets

_ANY_MARKER_TAG = re.compile(r"</?draft-[0-9a-f]{6,}[^>]*>", re.IGNORECASE)


def new_nonce() -> str:
    return secrets.token_hex(6)


def wrap_draft(text: str, label: str, nonce: str, note: str = "") -> str:
    clean = text.replace(nonce, "").strip()
    clean = _ANY_MARKER_TAG.sub("", clean)
    header = f'<draft-{nonce} label="{label}"{note}>'
    return f"{header}\n{clean}\n</draft-{nonce}>"
