"""Sources end to end: the web pages the drafts searched and read, numbered for the synthesis to cite
(`[1]`), and a check of the answer's citations against them."""

from __future__ import annotations

import re

from ..prompts import render
from .delimit import clean_data
from .result import Draft, Source

_MARKER = re.compile(r"\[(\d{1,3})\]")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def collect_sources(drafts: list[Draft]) -> list[Source]:
    """Every ok draft's citations, heaviest draft first, one entry per URL."""
    by_url: dict[str, Source] = {}
    for d in sorted((d for d in drafts if d.status == "ok"), key=lambda d: -d.weight):
        for c in d.citations:
            s = by_url.get(c.url)
            if s is None:
                s = by_url[c.url] = Source(n=len(by_url) + 1, url=c.url, title=c.title, snippet=c.snippet)
            elif c.snippet and not s.snippet:
                s.snippet = c.snippet
            if d.label not in s.drafts:
                s.drafts.append(d.label)
    return list(by_url.values())


def sources_block(sources: list[Source], nonce: str) -> str:
    """The numbered sources for the synthesis prompt, each delimited as untrusted data."""
    if not sources:
        return ""
    parts = []
    for s in sources:
        body = "\n".join(x for x in (f"URL: {s.url}", f"Title: {s.title}" if s.title else "", s.snippet or "") if x)
        parts.append(f'<source-{nonce} n="{s.n}">\n{clean_data(body, nonce)}\n</source-{nonce}>')
    return render("synthesis_sources", nonce=nonce, sources="\n".join(parts)) + "\n"


def citation_flags(answer: str | None, sources: list[Source]) -> list[str]:
    """Each citation in the answer that points to no source a draft read: a marker past the list, or a URL
    none of them has."""
    if not answer:
        return []
    flags = []
    for n in dict.fromkeys(int(m) for m in _MARKER.findall(answer)):
        if not 1 <= n <= len(sources) and sources:
            flags.append(f"the answer cites [{n}], but the drafts read only {len(sources)} source(s)")
        elif not sources and n:
            flags.append(f"the answer cites [{n}], but no draft read any source")
    known = {s.url.rstrip("/") for s in sources}
    for url in dict.fromkeys(u.rstrip(".,;:/") for u in _URL.findall(answer)):
        if url not in known and not any(k.startswith(url) or url.startswith(k) for k in known):
            flags.append(f"the answer cites {url}, which no draft searched or read")
    return flags
