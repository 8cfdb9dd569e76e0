"""`fusion-mcp serve` as a real process: stdio, streamable HTTP and SSE, the bearer token, the bind rule.

One upstream and one ensemble folder serve the whole module; each HTTP server process is started
once and shared by the tests (and protocol modes) that talk to it.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from tests.conftest import LAB_KEY, lab_toml
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream

MODES = ["legacy", "auto"]
TOKEN = "test-token-0b1d3c5e7f"


@pytest.fixture(scope="module")
def lab_upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        up.script("alpha", text="Paris is the capital of France.")
        up.script("beta", text="Paris.")
        up.script("fuser", text="Paris, the capital.")
        yield up


@pytest.fixture(scope="module")
def server_env(lab_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("ensembles")
    (folder / "lab.toml").write_text(lab_toml(lab_upstream.url, ["alpha", "beta"], reviewer=None))
    return {
        "LAB_KEY": LAB_KEY,
        "FUSION_MCP_ENSEMBLES": str(folder),
        "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
        "FUSION_MCP_CACHE": str(folder / "cache.sqlite3"),
    }


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", *args], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def http_server(server_env: dict[str, str]) -> Iterator[Any]:
    """Start `serve --transport X` on a free port; yields a starter; stops every process at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(transport: str, *extra: str, env: dict[str, str] | None = None) -> str:
        port = free_port()
        proc = spawn({**server_env, **(env or {})}, "--transport", transport, "--port", str(port), *extra)
        procs.append(proc)
        wait_for_port(port, proc, "fusion-mcp serve")
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture(scope="module")
def streamable_url(http_server: Any) -> str:
    return http_server("streamable-http") + "/mcp"


@pytest.fixture(scope="module")
def sse_url(http_server: Any) -> str:
    return http_server("sse") + "/sse"


@pytest.fixture(scope="module")
def authed_base(http_server: Any) -> str:
    return http_server("streamable-http", env={"FUSION_MCP_AUTH_TOKEN": TOKEN})


async def exercise(client: Client) -> None:
    """What a host does: list the tools, call one that runs models, call one that does not."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"fused_answer", "compare_drafts", "get_run", "list_ensembles", "list_models"}
    result = await client.call_tool("fused_answer", {"question": "Capital of France?"})
    assert not result.is_error, result.content
    assert result.structured_content["answer"] == "Paris, the capital."
    assert result.structured_content["ensemble"] == "lab"
    listed = await client.call_tool("list_ensembles", {})
    assert "lab" in {e["name"] for e in listed.structured_content["ensembles"]}
    bad = await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "nope"})
    assert bad.is_error and "unknown ensemble 'nope'" in bad.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_stdio_subprocess(server_env, mode):
    params = StdioServerParameters(command=sys.executable, args=["-m", "fusion_mcp", "serve"], env=server_env)
    async with Client(params, mode=mode) as client:
        await exercise(client)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_streamable_http(streamable_url, mode):
    async with Client(streamable_url, mode=mode) as client:
        await exercise(client)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_sse(sse_url, mode):
    async with Client(sse_client(sse_url), mode=mode) as client:
        await exercise(client)


INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "test", "version": "0"}},
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def test_bearer_token_401_without_200_with(authed_base):
    url = authed_base + "/mcp"
    missing = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS)
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": "Bearer nope"})
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    ok = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert "fusion-mcp" in ok.text
    lower = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200  # the scheme is case-insensitive (RFC 7235)
    other = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Basic {TOKEN}"})
    assert other.status_code == 401


@pytest.mark.anyio
async def test_a_client_with_the_token_can_call_tools(authed_base):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        async with Client(streamable_http_client(authed_base + "/mcp", http_client=http), mode="legacy") as client:
            await exercise(client)


def test_dns_rebinding_protection_is_on(streamable_url):
    forged = httpx.post(streamable_url, json=INITIALIZE, headers={**MCP_HEADERS, "host": "evil.example"})
    assert forged.status_code in (400, 403, 421)
    origin = httpx.post(streamable_url, json=INITIALIZE, headers={**MCP_HEADERS, "origin": "http://evil.example"})
    assert origin.status_code in (400, 403, 421)


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_a_public_bind_without_a_token_is_refused(server_env, transport):
    proc = spawn(server_env, "--transport", transport, "--host", "0.0.0.0", "--port", str(free_port()))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "FUSION_MCP_AUTH_TOKEN" in err and "0.0.0.0" in err


def test_a_public_bind_with_a_token_requires_it(http_server):
    base = http_server("streamable-http", "--host", "0.0.0.0", "--auth-token", TOKEN)
    assert httpx.post(base + "/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 401
    ok = httpx.post(base + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    # DNS-rebinding protection stays on off loopback too: an unknown Host is refused.
    forged = httpx.post(base + "/mcp", json=INITIALIZE,
                        headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}", "host": "evil.example"})
    assert forged.status_code in (400, 403, 421)


def test_the_entry_file_for_mcp_dev_exposes_the_server(server_env, monkeypatch):
    for key, value in server_env.items():
        monkeypatch.setenv(key, value)
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "fusion_mcp" / "server" / "mcp_entry.py"
    spec = importlib.util.spec_from_file_location("mcp_dev_loaded_entry", path)  # as `mcp dev` loads it
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import anyio

    tools = anyio.run(module.server.list_tools)
    # get_run answers in the shape of whichever tool started the run, so it declares no single schema
    assert {t.name: t.output_schema is not None for t in tools} == {
        "fused_answer": True, "compare_drafts": True, "get_run": False, "list_ensembles": True, "list_models": True}


def test_an_sse_response_opens_with_a_priming_event_and_a_retry_interval(streamable_url):
    """2025-11-25: the first SSE event carries an id and empty data (a cursor to resume from) and the
    `retry` a client waits before reconnecting; clients of earlier versions get no priming event."""
    reply = httpx.post(streamable_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events: list[dict[str, str]] = []
    for block in reply.text.replace("\r\n", "\n").strip().split("\n\n"):
        fields = [line.partition(":") for line in block.splitlines()]
        events.append({name: value.strip() for name, _, value in fields})
    assert events[0].get("id") and events[0].get("retry") == "2000" and events[0].get("data", "") == ""
    assert '"serverInfo"' in events[1]["data"]
    params: dict[str, Any] = {**INITIALIZE["params"], "protocolVersion": "2025-06-18"}  # type: ignore[dict-item]
    older = httpx.post(streamable_url, headers=MCP_HEADERS, json={**INITIALIZE, "params": params})
    assert "retry:" not in older.text and '"serverInfo"' in older.text
