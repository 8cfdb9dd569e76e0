"""A team endpoint, end to end: `fusion-mcp serve --oauth-issuer ISS --oauth-audience fusion --metrics-port M`
as a real process, a test authorization server over real HTTP, models on the loopback upstream, and a
real Prometheus scraping the metrics.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from tests.authserver import AuthServer, new_key
from tests.conftest import LAB_KEY, lab_toml
from tests.services import Service, fast_models, free_port, need, stop_process, wait_for_port
from tests.upstream import Upstream

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "0"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Endpoint:
    def __init__(self, auth: AuthServer, upstream: Upstream, server: Service, metrics_port: int, folder: Path) -> None:
        self.auth, self.upstream, self.server = auth, upstream, server
        self.metrics_port, self.folder = metrics_port, folder

    @property
    def mcp(self) -> str:
        return self.server.url + "/mcp"

    def post(self, token: str | None) -> httpx.Response:
        headers = {**MCP_HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
        return httpx.post(self.mcp, json=INITIALIZE, headers=headers, timeout=30)


def serve_env(folder: Path, url: str) -> dict[str, str]:
    ensembles = folder / "ensembles"
    ensembles.mkdir(exist_ok=True)
    (ensembles / "lab.toml").write_text(lab_toml(url, ["alpha", "beta"], deadline_s=60))
    import os

    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY,
            "FUSION_MCP_ENSEMBLES": str(ensembles), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
            "FUSION_MCP_CACHE": str(folder / "cache.sqlite3")}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    folder = tmp_path_factory.mktemp("team")
    with AuthServer() as auth, Upstream() as up:
        port, metrics_port = free_port(), free_port()
        argv = [sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http", "--port", str(port),
                "--oauth-issuer", auth.issuer, "--oauth-audience", "fusion", "--metrics-port", str(metrics_port),
                "--audit-log", str(folder / "audit.log")]
        server = Service(argv, port, "fusion-mcp serve --oauth-issuer", serve_env(folder, up.url))
        try:
            yield Endpoint(auth, up, server, metrics_port, folder)
        finally:
            server.stop()


class signed_in:
    """An MCP client whose every request carries `token`."""

    def __init__(self, endpoint: Endpoint, token: str) -> None:
        self.endpoint, self.token = endpoint, token

    async def __aenter__(self) -> Client:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        self.http = httpx2.AsyncClient(headers={"authorization": f"Bearer {self.token}"}, timeout=60)
        self.client = Client(streamable_http_client(self.endpoint.mcp, http_client=self.http))
        return await self.client.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)
        await self.http.aclose()


def test_a_request_without_a_token_gets_401_naming_the_resource_metadata(endpoint):
    refused = endpoint.post(None)
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'resource_metadata="' in challenge
    metadata_url = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
    metadata = httpx.get(metadata_url, timeout=10).json()
    assert metadata["authorization_servers"] == [endpoint.auth.issuer]
    assert metadata["resource"] == endpoint.mcp


def test_a_valid_token_is_let_in(endpoint):
    assert endpoint.post(endpoint.auth.token("alice")).status_code == 200


@pytest.mark.parametrize("why", ["expired", "wrong audience", "wrong issuer", "foreign key", "unknown key id",
                                 "not yet valid", "garbage"])
def test_a_bad_token_gets_401(endpoint, why):
    auth = endpoint.auth
    token = {
        "expired": lambda: auth.token("alice", expires_in=-120),  # past the 30 s clock skew
        "wrong audience": lambda: auth.token("alice", audience="another-service"),
        "wrong issuer": lambda: auth.token("alice", issuer="http://127.0.0.1:1"),
        "foreign key": lambda: auth.token("alice", key=new_key()),  # same key id, another key
        "unknown key id": lambda: auth.token("alice", key=new_key(), kid="made-up"),
        "not yet valid": lambda: auth.token("alice", not_before=600),
        "garbage": lambda: "not.a.jwt",
    }[why]()
    refused = endpoint.post(token)
    assert refused.status_code == 401, why
    assert "resource_metadata=" in refused.headers["www-authenticate"]


def test_made_up_key_ids_do_not_make_the_server_hammer_the_issuer(endpoint):
    auth = endpoint.auth
    endpoint.post(auth.token("alice"))  # the keys are fetched by now
    before = auth.jwks_fetches
    for i in range(5):
        assert endpoint.post(auth.token("mallory", key=new_key(), kid=f"made-up-{i}")).status_code == 401
    assert auth.jwks_fetches - before <= 1


@pytest.mark.anyio
async def test_alice_gets_a_fused_answer_and_bob_cannot_read_her_run(endpoint):
    fast_models(endpoint.upstream)
    alice, bob = endpoint.auth.token("alice"), endpoint.auth.token("bob")
    async with signed_in(endpoint, alice) as client:
        result = await client.call_tool("fused_answer", {"question": "Capital of France?"})
        assert not result.is_error, result.content
        out = result.structured_content
        assert out["status"] == "done" and out["answer"] == "Paris is the capital."
        run_id = out["run_id"]
        again = await client.call_tool("get_run", {"run_id": run_id})
        assert not again.is_error and again.structured_content["answer"] == "Paris is the capital."
        shown = json.loads((await client.read_resource(f"run://{run_id}")).contents[0].text)
        assert shown["answer"] == "Paris is the capital."
    async with signed_in(endpoint, bob) as client:
        stranger = await client.call_tool("get_run", {"run_id": run_id})
        unknown = await client.call_tool("get_run", {"run_id": "0123456789ab"})
        assert stranger.is_error and unknown.is_error
        assert stranger.content[0].text == unknown.content[0].text.replace("0123456789ab", run_id)
        reuse = await client.call_tool("fused_answer", {"from_run": run_id})
        assert reuse.is_error and "unknown run id" in reuse.content[0].text
        with pytest.raises(Exception, match="unknown run id"):
            await client.read_resource(f"run://{run_id}")


def test_each_run_leaves_one_audit_line_naming_its_user_and_no_text(endpoint):
    import anyio

    fast_models(endpoint.upstream)

    async def one_run() -> str:
        async with signed_in(endpoint, endpoint.auth.token("frank")) as client:
            result = await client.call_tool("fused_answer", {"question": "Audited question?"})
            return str(result.structured_content["run_id"])

    run_id = anyio.run(one_run)
    log = (endpoint.folder / "audit.log").read_text()
    lines = [json.loads(line.split(" fusion-mcp audit ", 1)[1]) for line in log.splitlines()]
    mine = [line for line in lines if line["run_id"] == run_id]
    assert len(mine) == 1
    assert mine[0]["user"] == "frank" and mine[0]["outcome"] == "ok" and mine[0]["calls"] == 4
    assert mine[0]["ensemble"] == "lab" and mine[0]["duration_s"] > 0
    assert "Audited question?" not in log and "Paris" not in log


def test_metrics_carry_runs_and_model_calls(endpoint):
    import anyio

    fast_models(endpoint.upstream)

    async def one_run() -> None:
        async with signed_in(endpoint, endpoint.auth.token("carol")) as client:
            assert not (await client.call_tool("fused_answer", {"question": "Metrics?"})).is_error

    anyio.run(one_run)
    text = httpx.get(f"http://127.0.0.1:{endpoint.metrics_port}/metrics", timeout=10).text
    assert 'fusion_runs_total{answer_source="synthesis",ensemble="lab",outcome="ok"}' in text
    assert 'fusion_model_calls_total{model="lab:alpha",role="drafter",status="ok"}' in text
    assert 'fusion_model_call_duration_seconds_bucket{le="0.5",model="lab:fuser",role="synthesizer"}' in text
    assert "fusion_runs_in_flight 0.0" in text and "fusion_runs_queued 0.0" in text
    assert "carol" not in text and "Metrics?" not in text  # no user, no question in any label


PROMETHEUS_CFG = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: fusion-mcp
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def test_a_real_prometheus_scrapes_the_metrics(endpoint):
    fast_models(endpoint.upstream)
    import anyio

    async def one_run() -> None:
        async with signed_in(endpoint, endpoint.auth.token("dave")) as client:
            assert not (await client.call_tool("fused_answer", {"question": "Scraped?"})).is_error

    anyio.run(one_run)
    cfg = endpoint.folder / "prometheus.yml"
    cfg.write_text(PROMETHEUS_CFG.format(port=endpoint.metrics_port))
    port = free_port()
    proc = subprocess.Popen([need("prometheus"), f"--config.file={cfg}",
                             f"--storage.tsdb.path={endpoint.folder / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc, "prometheus", timeout_s=60)
        found: dict[str, list[Any]] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(found) < 2:
            for query in ('sum(fusion_runs_total{ensemble="lab",outcome="ok"})',
                          'sum(fusion_model_calls_total{role="drafter",status="ok"})'):
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10).json()
                if answer["status"] == "success" and answer["data"]["result"]:
                    found[query] = answer["data"]["result"]
            time.sleep(0.5)
        assert len(found) == 2, found
        runs = float(found['sum(fusion_runs_total{ensemble="lab",outcome="ok"})'][0]["value"][1])
        drafts = float(found['sum(fusion_model_calls_total{role="drafter",status="ok"})'][0]["value"][1])
        assert runs >= 1 and drafts >= 2 * runs
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]
    finally:
        stop_process(proc)


class RawSession:
    """JSON-RPC over streamable HTTP as `token`'s own session (for requests the SDK client does not send)."""

    def __init__(self, endpoint: Endpoint, token: str) -> None:
        self.endpoint = endpoint
        self.headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
        opened = httpx.post(endpoint.mcp, json=INITIALIZE, headers=self.headers, timeout=30)
        assert opened.status_code == 200, opened.text
        self.headers |= {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        httpx.post(endpoint.mcp, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers=self.headers, timeout=30)
        self.next_id = 1

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response's `result`, or its `error` under the key "error"."""
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        got = httpx.post(self.endpoint.mcp, json=body, headers=self.headers, timeout=60)
        assert got.status_code == 200, got.text
        messages = ([got.json()] if got.headers["content-type"].startswith("application/json") else
                    [json.loads(line[5:]) for line in got.text.splitlines() if line.startswith("data:") and line[5:].strip()])
        answer = next(m for m in messages if m.get("id") == self.next_id)
        return {"error": answer["error"]} if "error" in answer else answer["result"]


def test_bob_cannot_get_list_read_or_cancel_alices_task(endpoint):
    fast_models(endpoint.upstream)
    alice = RawSession(endpoint, endpoint.auth.token("alice"))
    created = alice.request("tools/call", {"name": "fused_answer", "arguments": {"question": "Capital of France?"},
                                           "task": {"ttl": 600_000}})
    task_id = created["task"]["taskId"]
    assert [t["taskId"] for t in alice.request("tasks/list")["tasks"]] == [task_id]
    for _ in range(300):
        if alice.request("tasks/get", {"taskId": task_id})["status"] != "working":
            break
        time.sleep(0.1)
    assert alice.request("tasks/result", {"taskId": task_id})["structuredContent"]["answer"] == "Paris is the capital."

    bob = RawSession(endpoint, endpoint.auth.token("bob"))
    assert bob.request("tasks/list")["tasks"] == []
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        stranger = bob.request(method, {"taskId": task_id})["error"]["message"]
        unknown = bob.request(method, {"taskId": "0123456789ab"})["error"]["message"]
        assert stranger == unknown.replace("0123456789ab", task_id), method
