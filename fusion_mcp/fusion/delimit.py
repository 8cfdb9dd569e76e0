"""Wrap untrusted draft text so that it cannot close its delimiter and pose as instructions.

Each prompt gets its own marker, a hash of the run id, the stage and every draft's text: no draft can
know it, since it would have to contain its own hash, yet a rerun of the same drafts (from the call
cache) builds the same prompt. Inside a draft, every marker-shaped tag and every copy of the marker is
removed, and then whatever could still read as a tag is defused, so the only tags carrying the
marker are the ones written here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_ANY_MARKER_TAG = re.compile(r"</?(?:draft|analysis|source)-[0-9a-f]{6,}[^>]*>", re.IGNORECASE)
_TAG_START = re.compile(r"<(?=/?(?:draft|analysis|source)-)", re.IGNORECASE)
_REMOVED = "[…]"  # not hex and no "<": what replaces a marker cannot join two pieces into a new one
_DEFUSED = "‹"


def marker(run_id: str, stage: str, texts: Iterable[str]) -> str:
    digest = hashlib.sha256(f"{run_id}/{stage}".encode())
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:12]


def clean_draft(text: str, nonce: str) -> str:
    """The draft with no marker and no tag: removal, then a single pass that cannot create new ones."""
    clean = _ANY_MARKER_TAG.sub("", text)
    clean = clean.replace(nonce, _REMOVED)  # leaves no copy: what is left between removals held none
    return _TAG_START.sub(_DEFUSED, clean)  # changes only "<", which no marker contains


def clean_data(text: str, nonce: str) -> str:
    """Any untrusted text (a draft, the reviewer's analysis) made safe to place between markers."""
    return clean_draft(text, nonce).strip()


def wrap_draft(text: str, label: str, nonce: str, note: str = "") -> str:
    header = f'<draft-{nonce} label="{label}"{note}>'
    return f"{header}\n{clean_draft(text, nonce).strip()}\n</draft-{nonce}>"


_WRAPPED = re.compile(r'<draft-([0-9a-f]+) label="([^"]+)"[^>]*>\n(.*?)\n</draft-\1>', re.DOTALL)


def read_drafts(prompt: str) -> dict[str, str]:
    """label -> text of each draft `wrap_draft` put in a prompt, in order: what a reviewer or a
    synthesizer was shown (the test provider reads it to answer; tests read it to check a prompt)."""
    return {m.group(2): m.group(3) for m in _WRAPPED.finditer(prompt)}
