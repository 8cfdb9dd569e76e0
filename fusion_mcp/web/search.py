"""Search backends behind one small interface: a query in, `{url, title, snippet}` results out.

SearXNG (self-hosted, `GET {search_url}/search?q=...&format=json`), Brave (`X-Subscription-Token`),
Tavily (bearer key) and Exa (`x-api-key`), each called over HTTPS+JSON with the shared client and each
mapping its API's documented response. Keys come from the environment at call time.
"""

from __future__ import annotations

import json
import os
from typing import Any, Protocol

import httpx2 as httpx
from pydantic import BaseModel

from ..redaction import redact
from .config import WebConfig

_SNIPPET_CHARS = 400
MAX_URL_CHARS = 2048  # a longer "URL" from a search backend is no page to cite or fetch: it is left out


class SearchResult(BaseModel):
    url: str
    title: str = ""
    snippet: str = ""


class SearchError(Exception):
    """A search that failed; the message (redacted) goes back to the model as the tool's result."""


class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, count: int) -> list[SearchResult]: ...


def _text(value: Any) -> str:
    if isinstance(value, list):  # Exa's highlights
        value = " … ".join(v for v in value if isinstance(v, str))
    return " ".join(value.split())[:_SNIPPET_CHARS] if isinstance(value, str) else ""


def _results(items: Any, snippet_keys: tuple[str, ...], count: int) -> list[SearchResult]:
    out: list[SearchResult] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or len(item["url"]) > MAX_URL_CHARS:
            continue
        snippet = next((s for s in (_text(item.get(k)) for k in snippet_keys) if s), "")
        out.append(SearchResult(url=item["url"], title=_text(item.get("title")), snippet=snippet))
        if len(out) >= count:
            break
    return out


class _HTTPBackend:
    name = ""

    def __init__(self, config: WebConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self.url = config.endpoint

    def key(self) -> str:
        var = self.config.key_env
        value = os.environ.get(var) if var else None
        if not value:
            raise SearchError(f"{self.name} search needs {var} in the environment")
        return value

    async def _send(self, method: str, url: str, **kw: Any) -> Any:
        try:
            response = await self.client.request(method, url, timeout=self.config.fetch_timeout_s, **kw)
        except httpx.TransportError as exc:
            raise SearchError(f"{self.name} search unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise SearchError(redact(f"{self.name} search failed: HTTP {response.status_code}: {response.text[:200]}"))
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SearchError(f"{self.name} search answered something that is not JSON") from None


class SearxngSearch(_HTTPBackend):
    name = "searxng"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        url = self.url.rstrip("/") + "/search"
        body = await self._send("GET", url, params={"q": query, "format": "json"})
        return _results(body.get("results") if isinstance(body, dict) else None, ("content",), count)


class BraveSearch(_HTTPBackend):
    name = "brave"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        headers = {"accept": "application/json", "x-subscription-token": self.key()}
        body = await self._send("GET", self.url, params={"q": query, "count": count}, headers=headers)
        web = body.get("web") if isinstance(body, dict) else None
        return _results(web.get("results") if isinstance(web, dict) else None, ("description", "extra_snippets"), count)


class TavilySearch(_HTTPBackend):
    name = "tavily"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        headers = {"authorization": f"Bearer {self.key()}"}
        body = await self._send("POST", self.url, json={"query": query, "max_results": count}, headers=headers)
        return _results(body.get("results") if isinstance(body, dict) else None, ("content",), count)


class ExaSearch(_HTTPBackend):
    name = "exa"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        payload = {"query": query, "numResults": count, "contents": {"highlights": {"maxCharacters": _SNIPPET_CHARS}}}
        body = await self._send("POST", self.url, json=payload, headers={"x-api-key": self.key()})
        return _results(body.get("results") if isinstance(body, dict) else None,
                        ("highlights", "summary", "text"), count)


BACKENDS: dict[str, type[SearxngSearch | BraveSearch | TavilySearch | ExaSearch]] = {
    "searxng": SearxngSearch, "brave": BraveSearch, "tavily": TavilySearch, "exa": ExaSearch,
}


def make_backend(config: WebConfig, client: httpx.AsyncClient) -> SearchBackend | None:
    return BACKENDS[config.search](config, client) if config.search else None
