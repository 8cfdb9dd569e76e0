"""The HTTP transports' guards, over real HTTP: rebinding protection on every loopback address, weak
tokens refused, and a rejected request costing one log line, not a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import test_server_transports
from tests.services import free_port, stop_process, wait_for_port
from tests.test_server_transports import INITIALIZE, MCP_HEADERS, spawn
from tests.upstream import Upstream

server_env = test_server_transports.server_env  # the same fixture: the servers' environment


@pytest.fixture(scope="module")
def lab_upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def serve(server_env: dict[str, str]) -> Iterator[Any]:
    """Start `serve` bound to a host; yields (base url, process)."""
    procs: list[subprocess.Popen[str]] = []

    def start(transport: str, host: str, *extra: str) -> tuple[str, subprocess.Popen[str]]:
        port = free_port()
        proc = spawn(server_env, "--transport", transport, "--host", host, "--port", str(port), *extra)
        procs.append(proc)
        wait_for_port(port, proc, f"fusion-mcp serve on {host}", host=host)
        return f"http://{host}:{port}", proc

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.mark.parametrize("host", ["127.0.0.2", "127.1.2.3"])
def test_rebinding_protection_on_every_loopback_address(serve: Any, host: str) -> None:
    base, _ = serve("streamable-http", host)
    url = base + "/mcp"
    assert httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS).status_code == 200
    forged = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "host": "evil.example"})
    assert forged.status_code == 421
    foreign = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "origin": "http://evil.example"})
    assert foreign.status_code == 403
    own = httpx.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "origin": base})
    assert own.status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
def test_a_rejected_sse_request_logs_no_traceback(serve: Any, host: str) -> None:
    base, proc = serve("sse", host)
    for _ in range(3):
        assert httpx.get(base + "/sse", headers={"host": "evil.example"}).status_code == 421
        assert httpx.get(base + "/sse", headers={"origin": "http://evil.example"}).status_code == 403
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "Request validation failed" not in err


@pytest.mark.parametrize("token", ["x", " ", "                    ", "short-token", "aaaaaaaaaaaaaaaaaaaaaaaa",
                                   "a long token with spaces in it"])
def test_a_weak_token_is_refused(server_env: dict[str, str], token: str) -> None:
    proc = spawn(server_env, "--transport", "streamable-http", "--host", "0.0.0.0", "--port", str(free_port()),
                 "--auth-token", token)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "refusing the bearer token" in err and "Traceback" not in err


def test_a_weak_token_in_the_environment_is_refused(server_env: dict[str, str]) -> None:
    proc = spawn({**server_env, "FUSION_MCP_AUTH_TOKEN": "abc"}, "--transport", "sse", "--host", "0.0.0.0",
                 "--port", str(free_port()))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "3 characters long" in err
