"""The hosted search adapters (Brave, Tavily, Exa) against their documented response shapes, over
httpx.MockTransport; and what a model reads when a search cannot be made."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx2 as httpx
import pytest

from fusion_mcp.providers.base import ToolCall
from fusion_mcp.web.config import WebConfig
from fusion_mcp.web.tools import WebTools

# Shapes as the APIs document them (trimmed to the fields that matter plus some that do not).
BRAVE = {"type": "search", "query": {"original": "quillon bridge"}, "web": {"type": "search", "results": [
    {"title": "Quillon footbridge", "url": "https://example.org/quillon", "description": "A <strong>footbridge</strong> in the old town.",
     "age": "2 days ago", "language": "en", "family_friendly": True},
    {"title": "Bridges", "url": "https://example.org/bridges", "description": "", "extra_snippets": ["Many bridges."]},
]}}
TAVILY = {"query": "quillon bridge", "answer": None, "images": [], "follow_up_questions": None, "response_time": 1.2,
          "results": [{"title": "Quillon footbridge", "url": "https://example.org/quillon", "score": 0.93,
                       "content": "The footbridge crosses the river Vell.", "raw_content": None}]}
EXA = {"requestId": "b5947044c4b78efa9552a7c89b306d95", "resolvedSearchType": "neural", "results": [
    {"id": "https://example.org/quillon", "title": "Quillon footbridge", "url": "https://example.org/quillon",
     "publishedDate": "2024-01-01T00:00:00.000Z", "author": None, "score": 0.4,
     "highlights": ["It opened in 1911.", "It is 312 metres long."], "highlightScores": [0.5, 0.4]}],
    "costDollars": {"total": 0.005}}


def tools_with(kind: str, handler: Any) -> WebTools:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return WebTools(WebConfig(search=cast(Any, kind), max_results=3), "t", client=client)


async def search(tools: WebTools, query: str = "quillon bridge") -> Any:
    return await tools.run(ToolCall(id="1", name="web_search", arguments={"query": query}), ("web_search",), timeout_s=5)


async def searched(kind: str, answer: dict[str, Any]) -> tuple[httpx.Request, Any]:
    """One search through backend `kind` whose API answers `answer`: the request it sent, and the result."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    tools = tools_with(kind, handler)
    result = await search(tools)
    await tools.client.aclose()
    await tools.aclose()
    return seen[0], result


@pytest.mark.anyio
async def test_brave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAVE_API_KEY", "brave-key-0123456789abcdef")
    req, result = await searched("brave", BRAVE)
    assert req.method == "GET" and str(req.url).startswith("https://api.search.brave.com/res/v1/web/search?")
    assert req.url.params["q"] == "quillon bridge" and req.url.params["count"] == "3"
    assert req.headers["x-subscription-token"] == "brave-key-0123456789abcdef"
    assert [c.url for c in result.citations] == ["https://example.org/quillon", "https://example.org/bridges"]
    assert result.citations[0].snippet == "A <strong>footbridge</strong> in the old town."
    assert result.citations[1].snippet == "Many bridges."  # extra_snippets when the description is empty
    assert "brave-key" not in result.text and "[1] Quillon footbridge" in result.text and result.cost_usd == 0.005


@pytest.mark.anyio
async def test_tavily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-key-0123456789abcdef")
    req, result = await searched("tavily", TAVILY)
    assert req.method == "POST" and str(req.url) == "https://api.tavily.com/search"
    assert req.headers["authorization"] == "Bearer tvly-key-0123456789abcdef"
    assert json.loads(req.content) == {"query": "quillon bridge", "max_results": 3}
    assert [(c.url, c.title, c.snippet) for c in result.citations] == [
        ("https://example.org/quillon", "Quillon footbridge", "The footbridge crosses the river Vell.")]


@pytest.mark.anyio
async def test_exa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXA_API_KEY", "exa-key-0123456789abcdef")
    req, result = await searched("exa", EXA)
    assert req.method == "POST" and str(req.url) == "https://api.exa.ai/search"
    assert req.headers["x-api-key"] == "exa-key-0123456789abcdef"
    body = json.loads(req.content)
    assert body["query"] == "quillon bridge" and body["numResults"] == 3 and "highlights" in body["contents"]
    assert result.citations[0].snippet == "It opened in 1911. … It is 312 metres long."


@pytest.mark.anyio
@pytest.mark.parametrize("kind,var", [("brave", "BRAVE_API_KEY"), ("tavily", "TAVILY_API_KEY"), ("exa", "EXA_API_KEY")])
async def test_failures_are_tool_results_never_raised(monkeypatch: pytest.MonkeyPatch, kind: str, var: str) -> None:
    tools = tools_with(kind, lambda r: httpx.Response(200, json={}))
    missing = await search(tools)
    assert not missing.ok and missing.text == f"error: {kind} search needs {var} in the environment"

    key = "k3y-0123456789abcdefghij"
    monkeypatch.setenv(var, key)
    echo = tools_with(kind, lambda r: httpx.Response(401, text=f"invalid key {key}"))
    refused = await search(echo)
    assert not refused.ok and "HTTP 401" in refused.text and key not in refused.text  # an echoed key is redacted

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    unreachable = await search(tools_with(kind, down))
    assert unreachable.text == f"error: {kind} search unreachable: ConnectError"
    garbage = await search(tools_with(kind, lambda r: httpx.Response(200, text="<html>")))
    assert "not JSON" in garbage.text
    empty = await search(tools_with(kind, lambda r: httpx.Response(200, json={"results": []})))
    assert empty.ok and empty.text == "No results for 'quillon bridge'."


@pytest.mark.anyio
async def test_a_result_whose_url_is_too_long_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A search backend's URL reaches the model's prompt and the run's sources: one of a megabyte is no page."""
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-0123456789abcdef")
    huge = {"title": "Padding", "url": "https://example.org/" + "a" * 1_000_000, "content": "x"}
    body = {**TAVILY, "results": [huge, *cast(list[Any], TAVILY["results"])]}
    tools = tools_with("tavily", lambda request: httpx.Response(200, json=body))
    result = await search(tools)
    await tools.client.aclose()
    await tools.aclose()
    assert [c.url for c in result.citations] == ["https://example.org/quillon"]
    assert len(result.text) < 2000 and "[1] Quillon footbridge" in result.text
