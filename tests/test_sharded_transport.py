"""The model calls' HTTP client (providers/sharded_transport.py), over real loopback HTTP: a burst spreads
over small pools and every call answers, calls one at a time stay on one pool, a proxy set in the
environment still carries the calls, and no cookie an upstream sets is kept or sent back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx2 as httpx
import pytest

from fusion_mcp.providers.sharded_transport import ShardedTransport, model_api_client
from tests.conftest import LAB_KEY
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)
BODY = {"model": "m", "messages": [{"role": "user", "content": "2+2?"}]}


async def _post(client: httpx.AsyncClient, url: str) -> int:
    response = await client.post(f"{url}/v1/chat/completions", json=BODY,
                                 headers={"authorization": f"Bearer {LAB_KEY}"})
    return response.status_code


async def test_a_burst_spreads_over_small_pools_and_every_call_answers(upstream: Upstream) -> None:
    upstream.script("m", text="Paris.", delay=0.3)
    transport = ShardedTransport(LIMITS, shard_size=16)
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport) as client:

        async def one() -> None:
            statuses.append(await _post(client, upstream.url))

        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(one)
        assert statuses == [200] * 40
        assert upstream.max_in_flight == 40  # none waited inside a pool
        assert len(transport.open_requests) == 3  # 40 calls over pools of 16: three opened, of four
        assert transport.open_requests == [0, 0, 0]  # every place given back when its reply was read


async def test_calls_one_at_a_time_stay_on_the_first_pool(upstream: Upstream) -> None:
    upstream.script("m", text="Paris.")
    transport = ShardedTransport(LIMITS, shard_size=16)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(5):
            assert await _post(client, upstream.url) == 200
    assert transport.open_requests == [0]  # one pool, so its warm connection is the one reused


class _Recorder(BaseHTTPRequestHandler):
    """Plays a forward proxy (it records the request line) and an upstream that sets a cookie."""

    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("cookie")))
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "__cf_bm=abc; Path=/")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_proxy_in_the_environment_still_carries_the_calls(recorder: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", recorder)
    async with model_api_client(LIMITS, httpx.Timeout(10.0)) as client:
        response = await client.get("http://api.example.invalid/v1/models")
    assert response.status_code == 200
    assert _Recorder.seen[0][0] == "http://api.example.invalid/v1/models"  # the absolute form: via the proxy


async def test_all_proxy_carries_the_calls_and_no_proxy_hosts_go_straight_out(
        recorder: str, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    """ALL_PROXY, as a plain httpx client reads it; a host in NO_PROXY (a model server on this machine)
    is reached directly, through the sharded pools."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", recorder)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    upstream.script("m", text="Paris.")
    async with model_api_client(LIMITS, httpx.Timeout(10.0)) as client:
        assert (await client.get("http://api.example.invalid/v1/models")).status_code == 200
        assert await _post(client, upstream.url) == 200
        shards = client._transport
    assert [path for path, _cookie in _Recorder.seen] == ["http://api.example.invalid/v1/models"]  # via the proxy
    assert len(upstream.calls("m")) == 1  # straight to the upstream
    assert isinstance(shards, ShardedTransport) and shards.open_requests == [0]


async def test_no_cookie_an_upstream_sets_is_kept_or_sent_back(recorder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with model_api_client(LIMITS, httpx.Timeout(10.0)) as client:
        for _ in range(2):
            assert (await client.get(f"{recorder}/v1/models")).status_code == 200
        assert not client.cookies
    assert [cookie for _path, cookie in _Recorder.seen] == [None, None]
