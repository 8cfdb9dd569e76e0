"""Wrap untrusted draft text so that it cannot close its delimiter and pose as instructions.

Each prompt gets its own marker (derived from the run id, which no draft sees), and any copy of it
or of any other marker-shaped tag inside a draft is removed, so the only tags carrying the marker are
the ones written here.
"""

from __future__ import annotations

import re

_ANY_MARKER_TAG = re.compile(r"</?(?:draft|analysis)-[0-9a-f]{6,}[^>]*>", re.IGNORECASE)


def clean_data(text: str, nonce: str) -> str:
    """Untrusted text with the marker and any marker-shaped tag removed."""
    return _ANY_MARKER_TAG.sub("", text.replace(nonce, "")).strip()


def wrap_draft(text: str, label: str, nonce: str, note: str = "") -> str:
    clean = clean_data(text, nonce)
    header = f'<draft-{nonce} label="{label}"{note}>'
    return f"{header}\n{clean}\n</draft-{nonce}>"
