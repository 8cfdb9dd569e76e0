"""A page's main text: trafilatura (the optional `web` extra) when installed, else a plain reading of the
HTML with the standard library (scripts, styles and page furniture left out), cut to what a model reads."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "head", "nav", "footer", "aside",
         "form", "button", "select"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
_BLOCK = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5",
          "h6", "pre", "blockquote", "dd", "dt", "br", "hr", "header", "figcaption", "td", "th"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP and tag not in _VOID:
            self._skip += 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP and self._skip:
            self._skip -= 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def plain_text(html: str) -> tuple[str | None, str]:
    """(title, text) with the standard library only."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        pass
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = "\n".join(line for line in lines if line)
    title = " ".join("".join(parser.title).split()) or None
    return title, text


def main_text(html: str, url: str) -> tuple[str | None, str]:
    """(title, main text): trafilatura's when it is installed and finds some, else the plain reading."""
    try:
        import trafilatura
    except ImportError:
        return plain_text(html)
    try:
        doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    except Exception:
        doc = None
    text = getattr(doc, "text", None) if doc is not None else None
    if not text or not text.strip():
        return plain_text(html)
    title = getattr(doc, "title", None)
    return (title if isinstance(title, str) and title.strip() else plain_text(html)[0]), text.strip()


def cut(text: str, max_chars: int) -> str:
    """At most `max_chars`, cut at a line or word end, saying it was cut."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    end = max(head.rfind("\n"), head.rfind(" "))
    head = head[:end] if end > max_chars * 0.8 else head
    return f"{head.rstrip()}\n[… cut at {len(head)} of {len(text)} characters]"
