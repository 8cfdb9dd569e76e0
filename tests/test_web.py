"""Web tools end to end: drafters that search and read pages over real HTTP (both wire formats, streamed
and not), a safe web_fetch (SSRF spellings, fetch_allow, redirects, size), sources cited in the answer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.providers.base import ToolCall
from fusion_mcp.web.config import WebConfig
from fusion_mcp.web.tools import WebTools
from tests.conftest import lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream, tool_names, tool_results
from tests.web_server import FACT, INJECTION, Trap, Web


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


@pytest.fixture
def web(trap: Trap) -> Iterator[Web]:
    w = Web(trap.port).start()
    yield w
    w.close()


def web_toml(upstream: Upstream, web: Web, drafters: list[Any], *, kind: str = "openai", stream: bool = True,
             extra: str = "", **kw: Any) -> str:
    kw.setdefault("min_drafts", len(drafters))  # wait for every draft: the plan would not, for a tool loop of unknown pace
    kw.setdefault("deadline_s", 30)
    text = lab_toml(upstream.url, drafters, kind=kind,
                    provider_extra="max_retries = 0" + ("" if stream else "\nstream = false"), **kw)
    return text + (f'\n[web]\nsearch = "searxng"\nsearch_url = "{web.url}"\nfetch_allow = ["{web.hostport}"]\n{extra}')


def researcher(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Searches, then reads the first result's page, then answers."""
    results = tool_results(body)
    if not results:
        return [{"name": "web_search", "arguments": {"query": "Quillon footbridge opening date"}}]
    if len(results) == 1:
        url = re.search(r"URL: (\S+/quillon)", results[0])
        return [{"name": "web_fetch", "arguments": {"url": url.group(1) if url else "missing"}}]
    return None


def researcher_answer(body: dict[str, Any]) -> str:
    page = tool_results(body)[-1]
    found = re.search(r"opened on ([0-9]+ \w+ [0-9]{4})", page)
    url = re.search(r"URL: (\S+)", page)
    return f"The Quillon footbridge opened on {found.group(1) if found else 'an unknown date'} ({url.group(1) if url else '?'})."


def fuser_answer(body: dict[str, Any]) -> str:
    prompt = "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
    number = re.search(r'n="(\d+)">\nURL: \S+/quillon', prompt)
    date = re.search(r"opened on ([0-9]+ \w+ [0-9]{4})", prompt)
    return f"It opened on {date.group(1) if date else '?'} [{number.group(1) if number else '?'}]."


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [True, False])
async def test_done_when_grounded_answer_with_citation_and_refused_loopback(
        upstream: Upstream, web: Web, trap: Trap, ensemble_dir: Path, kind: str, stream: bool) -> None:
    secret = f"http://127.0.0.1:{trap.port}/secret"
    upstream.script("alpha", tool_calls=researcher, text=researcher_answer)
    upstream.script("beta", tool_calls=lambda b: None if tool_results(b) else [
        {"name": "web_fetch", "arguments": {"url": secret}}], text=lambda b: "Could not read it: " + tool_results(b)[0])
    upstream.script("judge", scoring_reviewer({}))
    upstream.script("fuser", text=fuser_answer)
    reg = write_registry(ensemble_dir, lab=web_toml(upstream, web, [
        {"model": "alpha", "tools": ["web_search", "web_fetch"]}, {"model": "beta", "tools": ["web_fetch"]}],
        kind=kind, stream=stream))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("When did the Quillon footbridge open?", ensemble="lab")

    page_url = f"{web.url}/quillon"
    assert result.answer == "It opened on 14 March 1911 [1]."  # the fact is only on the fetched page
    assert result.sources[0].url == page_url and result.citation_flags == []
    alpha = next(d for d in result.drafts if d.model == "lab:alpha")
    assert alpha.status == "ok" and alpha.tool_calls == 2
    cited = {c.url: c for c in alpha.citations}
    assert page_url in cited and "14 March 1911" in (cited[page_url].snippet or "")
    assert web.queries == ["Quillon footbridge opening date"]  # the search API saw the query
    # beta asked for a loopback address not in fetch_allow: refused as its tool result, nothing reached it
    beta = next(d for d in result.drafts if d.model == "lab:beta")
    assert beta.status == "ok" and "refused" in (beta.text or "") and "loopback" in (beta.text or "")
    assert trap.connections == 0
    # the tools offered are exactly web_search and web_fetch (beta: web_fetch only)
    assert {tuple(tool_names(c.body)) for c in upstream.calls("alpha")} == {("web_search", "web_fetch")}
    assert {tuple(tool_names(c.body)) for c in upstream.calls("beta")} == {("web_fetch",)}
    # the fetched page reached the model as delimited data
    last = tool_results(upstream.calls("alpha")[-1].body)[-1]
    assert re.match(r'<source-[0-9a-f]{12} tool="web_fetch"', last) and FACT in last


SSRF_SPELLINGS = [
    "http://127.0.0.1:{port}/", "http://127.1:{port}/", "http://0x7f.1:{port}/", "http://0x7f000001:{port}/",
    "http://2130706433:{port}/", "http://0177.0.0.1:{port}/", "http://017700000001:{port}/",
    "http://127.000.000.001:{port}/", "http://localhost:{port}/", "http://LOCALHOST.:{port}/",
    "http://0.0.0.0:{port}/", "http://0:{port}/", "http://[::1]:{port}/", "http://[0:0:0:0:0:0:0:1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/", "http://[::ffff:7f00:1]:{port}/", "http://[::]:{port}/",
    "http://[::127.0.0.1]:{port}/", "http://[64:ff9b::7f00:1]:{port}/", "http://[2002:7f00:1::]:{port}/",
    "http://user:pass@127.0.0.1:{port}/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/", "http://10.0.0.1:{port}/", "http://172.16.5.4/", "http://192.168.1.1/",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://[ff02::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://255.255.255.255/", "file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:{port}/",
    "//127.0.0.1:{port}/", "http:///nohost",
]


@pytest.mark.anyio
async def test_ssrf_every_spelling_refused_and_nothing_reaches_the_listener(trap: Trap) -> None:
    tools = WebTools(WebConfig(), "t")
    try:
        for spelling in SSRF_SPELLINGS:
            url = spelling.format(port=trap.port)
            result = await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": url}), ("web_fetch",),
                                     timeout_s=5)
            assert not result.ok and result.text.startswith("error: web_fetch refused"), (url, result.text)
            assert "user:pass" not in result.text, url  # credentials in a URL are never sent nor shown
    finally:
        await tools.aclose()
    assert trap.connections == 0


@pytest.mark.anyio
async def test_fetch_allow_lets_exactly_the_listed_host_port_through(trap: Trap, web: Web) -> None:
    tools = WebTools(WebConfig(fetch_allow=(f"127.0.0.1:{trap.port}",)), "t")

    async def fetch(url: str) -> str:
        result = await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": url}), ("web_fetch",), timeout_s=5)
        return result.text

    try:
        assert "secret" in await fetch(f"http://127.0.0.1:{trap.port}/")
        assert trap.connections == 1
        assert "secret" in await fetch(f"http://127.1:{trap.port}/")  # the same address, spelt short
        assert trap.connections == 2
        assert "refused" in await fetch(f"{web.url}/quillon")  # same host, another port
        assert "refused" in await fetch(f"http://localhost:{trap.port}/")  # another name for it
        assert "refused" in await fetch(f"http://[::1]:{trap.port}/")
    finally:
        await tools.aclose()
    assert trap.connections == 2 and web.paths == []


@pytest.mark.anyio
async def test_redirects_are_rechecked_and_limited(trap: Trap, web: Web) -> None:
    tools = WebTools(WebConfig(fetch_allow=(web.hostport,)), "t")

    async def fetch(path: str) -> str:
        result = await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": web.url + path}),
                                 ("web_fetch",), timeout_s=5)
        return result.text

    try:
        private = await fetch("/redirect-private")
        assert "refused" in private and "loopback" in private and trap.connections == 0
        metadata = await fetch("/redirect-metadata")
        assert "refused" in metadata and "link-local" in metadata
        assert FACT in await fetch("/hop/2")  # three redirects: followed
        assert "more than 3 redirects" in await fetch("/hop/3")
        assert "not a text page" in await fetch("/image")
        started = time.monotonic()
        slow = await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": web.url + "/slow"}), ("web_fetch",),
                               timeout_s=0.5)  # what is left of the run's deadline, shorter than fetch_timeout_s
        assert slow.text.endswith("no answer within 0.5 s") and time.monotonic() - started < 10  # not the 20 s page
        assert "HTTP 404" in await fetch("/missing")
        big = await fetch("/big")
        assert "[… cut at" in big and len(big) < 7000
    finally:
        await tools.aclose()


@pytest.mark.anyio
async def test_page_text_is_main_text_and_injection_stays_data(web: Web) -> None:
    tools = WebTools(WebConfig(fetch_allow=(web.hostport,)), "run1")
    try:
        page = (await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": f"{web.url}/quillon"}),
                                ("web_fetch",), timeout_s=5)).text
        hostile = (await tools.run(ToolCall(id="2", name="web_fetch", arguments={"url": f"{web.url}/inject"}),
                                   ("web_fetch",), timeout_s=5)).text
    finally:
        await tools.aclose()
    from fusion_mcp.fusion.tool_loop import wrap_source

    page, hostile = wrap_source(page, "run1", 'tool="web_fetch"'), wrap_source(hostile, "run1", 'tool="web_fetch"')
    assert FACT in page and "tracking" not in page and "color: red" not in page
    assert "Title: Quillon footbridge" in page
    marker = re.match(r"<source-([0-9a-f]{12}) ", hostile).group(1)
    assert INJECTION in hostile  # quoted as data ...
    assert hostile.count(f"</source-{marker}>") == 1 and hostile.rstrip().endswith(f"</source-{marker}>")
    assert "</source-0123456789ab>" not in hostile and '<draft-0123456789ab' not in hostile  # ... that cannot close its block


def test_plain_extraction_without_trafilatura() -> None:
    from fusion_mcp.web.extract import cut, plain_text
    from tests.web_server import FACT_PAGE

    title, text = plain_text(FACT_PAGE)
    assert title == "Quillon footbridge - history"
    assert FACT in text and "tracking" not in text and "Home | About" not in text and "color" not in text
    assert cut("word " * 100, 50).endswith("characters]") and len(cut("short", 50)) == 5


@pytest.mark.anyio
@pytest.mark.parametrize("cert_for", ["localhost", "elsewhere.example"])
async def test_https_connects_to_the_checked_address_and_checks_the_name(cert_for: str) -> None:
    """The request goes to the address that was checked, with the name in the Host header and in TLS's
    SNI, and the certificate must be for that name."""
    import httpx2 as httpx

    from fusion_mcp.web.fetch import pinned_client
    from tests.web_server import TLSWeb

    tls = TLSWeb(cert_for)
    client = httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=tls.client_context())
    assert type(client) is type(pinned_client())
    tools = WebTools(WebConfig(fetch_allow=(f"localhost:{tls.port}",)), "t", fetch_client=client)
    try:
        result = await tools.run(ToolCall(id="1", name="web_fetch", arguments={"url": f"https://localhost:{tls.port}/"}),
                                 ("web_fetch",), timeout_s=10)
    finally:
        await tools.aclose()
        await client.aclose()
        tls.close()
    if cert_for == "localhost":
        assert result.ok and FACT in result.text
        assert tls.hosts == [f"localhost:{tls.port}"] and tls.sni == ["localhost"]
    else:  # a certificate for another name is refused though the address is the checked one
        assert not result.ok and result.text.endswith("cannot fetch localhost: ConnectError") and tls.hosts == []
