"""The two tools a role may be offered, `web_search` and `web_fetch`, and what running one returns.

A tool never raises: a refusal or a failure is the text of its result, for the model to read. What a
tool brings back is untrusted: it is redacted here, and the tool loop (fusion/tool_loop.py) wraps it
between tags whose marker hashes the text, so that a page cannot close its block and pose as instructions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2 as httpx

from ..providers.base import Citation, ToolCall, ToolSpec
from ..providers.tool_wire import INVALID_ARGUMENTS
from ..redaction import redact
from .address import FetchRefused, shown
from .config import WebConfig
from .extract import cut
from .fetch import fetch_page, pinned_client
from .search import SearchBackend, SearchError, make_backend

WEB_SEARCH = ToolSpec(
    name="web_search",
    description="Search the web. Returns up to a few results, each a numbered title, URL and snippet. "
                "Use web_fetch on a result's URL to read the page.",
    parameters={"type": "object", "properties": {"query": {"type": "string", "description": "What to search for."}},
                "required": ["query"]},
)
WEB_FETCH = ToolSpec(
    name="web_fetch",
    description="Fetch a web page (http or https) and return its main text, cut to a few thousand characters.",
    parameters={"type": "object", "properties": {"url": {"type": "string", "description": "The page's URL."}},
                "required": ["url"]},
)
SPECS = {"web_search": WEB_SEARCH, "web_fetch": WEB_FETCH}
SNIPPET_CHARS = 300


class SpendRefused(Exception):
    """A search the spending cap has no room for."""


@dataclass
class ToolResult:
    text: str
    citations: list[Citation] = field(default_factory=list)
    cost_usd: float = 0.0
    ok: bool = True
    note: str = ""  # one line for the run's record: what was asked, what came of it
    source: str | None = None  # for text from the web: the attributes its delimiting tag shows


class WebTools:
    """The tools of one run, for every role that has some. `spend(usd)` charges a search to the run's
    spending cap (it raises SpendRefused when there is no room)."""

    def __init__(self, config: WebConfig, run_id: str, client: httpx.AsyncClient | None = None,
                 fetch_client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.run_id = run_id  # what the markers around this run's tool results hash
        self._own = (client is None, fetch_client is None)
        self.client = client or httpx.AsyncClient()
        self.search_backend: SearchBackend | None = make_backend(config, self.client)
        self.fetch_client = fetch_client or pinned_client()

    async def aclose(self) -> None:
        for own, c in zip(self._own, (self.client, self.fetch_client), strict=True):
            if own:
                await c.aclose()

    def specs(self, names: tuple[str, ...]) -> list[ToolSpec]:
        return [SPECS[n] for n in ("web_search", "web_fetch") if n in names]

    async def run(self, call: ToolCall, offered: tuple[str, ...], *, timeout_s: float,
                  spend: object = None) -> ToolResult:
        if call.name not in offered:
            return ToolResult(f"error: there is no tool {call.name!r}; the tools are {', '.join(offered)}",
                              ok=False, note=f"{call.name}: not a tool offered")
        if INVALID_ARGUMENTS in call.arguments:
            return ToolResult("error: the arguments were not a JSON object", ok=False,
                              note=f"{call.name}: bad arguments")
        if call.name == "web_search":
            return await self._search(str(call.arguments.get("query") or ""), spend)
        return await self._fetch(str(call.arguments.get("url") or ""), timeout_s)

    async def _search(self, query: str, spend: object) -> ToolResult:
        query = redact(query.strip())[:500]
        if not query:
            return ToolResult("error: web_search needs a query", ok=False, note="web_search: no query")
        if self.search_backend is None:
            return ToolResult("error: no search backend is set up ([web] search)", ok=False, note="web_search: none")
        price = self.config.price_per_search
        try:
            if callable(spend):
                spend(price)
            results = await self.search_backend.search(query, self.config.max_results)
        except (SearchError, SpendRefused) as exc:
            return ToolResult(f"error: {redact(str(exc))}", ok=False, note=f"web_search {query!r}: {exc}")
        if not results:
            return ToolResult(f"No results for {query!r}.", cost_usd=price, note=f"web_search {query!r}: no results")
        lines = [f"[{i}] {redact(r.title)}\nURL: {redact(r.url)}\n{redact(r.snippet)}"
                 for i, r in enumerate(results, 1)]
        cites = [Citation(url=redact(r.url), title=redact(r.title) or None,
                          snippet=redact(r.snippet)[:SNIPPET_CHARS] or None) for r in results]
        return ToolResult("\n\n".join(lines), cites, cost_usd=price,
                          note=f"web_search {query!r}: {len(results)} results",
                          source=f'tool="web_search" query="{_attr(query)}"')

    async def _fetch(self, url: str, timeout_s: float) -> ToolResult:
        url = redact(url.strip())  # a key a model put in a URL is never sent anywhere
        if not url:
            return ToolResult("error: web_fetch needs a url", ok=False, note="web_fetch: no url")
        try:
            page = await fetch_page(self.fetch_client, url, allow=self.config.allow,
                                    timeout_s=min(timeout_s, self.config.fetch_timeout_s),
                                    max_bytes=self.config.fetch_max_bytes)
        except FetchRefused as exc:
            reason, where = redact(str(exc)), redact(shown(url))
            return ToolResult(f"error: web_fetch refused {where}: {reason}", ok=False,
                              note=f"web_fetch {where}: refused: {reason}")
        text = cut(redact(page.text), self.config.fetch_max_chars) or "(the page has no text)"
        title = redact(page.title) if page.title else None
        head = (f"Title: {title}\n" if title else "") + f"URL: {redact(page.url)}\n\n"
        snippet = " ".join(text.split())[:SNIPPET_CHARS]
        return ToolResult(head + text, [Citation(url=redact(page.url), title=title, snippet=snippet or None)],
                          note=f"web_fetch {redact(page.url)}: {len(page.text)} characters",
                          source=f'tool="web_fetch" url="{_attr(redact(page.url))}"')


def _attr(value: str) -> str:
    return value.replace('"', "'").replace("<", "‹").replace(">", "›")[:200]
