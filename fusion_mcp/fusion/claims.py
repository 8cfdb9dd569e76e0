"""Claim-level provenance: the synthesizer ends each claim with the labels of the drafts behind it,
`[A, C]`; this reads the marks into `Claim`s and returns the answer without them.

Only a bracket of known draft labels counts as a mark (a reference like `x[A]` in code, with a word
character before it, does not); an unknown label in a mark is dropped, never guessed at.
"""

from __future__ import annotations

import re

from .result import Claim, ClaimSource, Draft

_MARK = re.compile(r"([ \t]{0,3})\[([A-Z]{1,2}(?:[ \t]*,[ \t]*[A-Z]{1,2})*)\](?![\w(\[])")
MAX_CLAIMS = 200  # past this, marks are still removed, but no more claims are kept
_CLAIM_END = re.compile(r"(?:(?<=[.!?;])\s+|\n+)")


def read_claims(text: str, drafts: list[Draft]) -> tuple[str, list[Claim]]:
    """(the text without marks, its marked claims). A claim is the text since the previous mark or
    sentence end before each mark; labels not among `drafts` are ignored."""
    by_label = {d.label: d for d in drafts}
    out: list[str] = []
    claims: list[Claim] = []
    pos = 0
    length = 0
    for m in _MARK.finditer(text):
        labels = [x.strip() for x in m.group(2).split(",")]
        glued = not m.group(1) and m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_[")
        if glued or not any(x in by_label for x in labels):
            continue  # not a mark of ours (or only unknown labels): left as written
        before = text[pos:m.start()]
        out.append(before)
        start = length + _claim_start(before)  # a claim never reaches back past the previous mark
        length += len(before)
        known = list(dict.fromkeys(x for x in labels if x in by_label))
        segment = before[start - (length - len(before)):]
        claim_text = segment.strip()
        if claim_text and len(claims) < MAX_CLAIMS:
            lead = len(segment) - len(segment.lstrip())
            claims.append(Claim(text=claim_text, start=start + lead, end=start + lead + len(claim_text), labels=known,
                                models=list(dict.fromkeys(by_label[x].model for x in known)),
                                sources=_sources(by_label, known)))
        pos = m.end()
    out.append(text[pos:])
    return ("".join(out).strip() if claims else text), claims


def _claim_start(written: str) -> int:
    """Where the claim that ends at the end of `written` begins: after the last sentence end."""
    body = written.rstrip()
    ends = [m.end() for m in _CLAIM_END.finditer(body)]
    return ends[-1] if ends else 0


def _sources(by_label: dict[str, Draft], labels: list[str]) -> list[ClaimSource]:
    """The web sources of the drafts behind a claim, once drafts carry them (their `citations`)."""
    seen: dict[str, ClaimSource] = {}
    for x in labels:
        for c in getattr(by_label[x], "citations", []) or []:
            seen.setdefault(c.url, ClaimSource(url=c.url, title=c.title))
    return list(seen.values())


def marked(answer: str, claims: list[Claim]) -> str:
    """The answer with each claim's marks put back, `[A, C]`: for the surfaces that show them."""
    out, pos = [], 0
    for c in sorted(claims, key=lambda c: c.end):
        if c.end < pos or answer[c.start:c.end] != c.text:
            continue  # a claim that no longer matches the text (edited answer): left unmarked
        out += [answer[pos:c.end], f" [{', '.join(c.labels)}]"]
        pos = c.end
    return "".join(out) + answer[pos:]
