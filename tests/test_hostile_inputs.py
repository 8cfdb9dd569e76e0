"""Input no one should be able to slip past: a FIFO or a device in the ensembles folder, a huge
file, a guessable token, a question of control characters, an infinite spending cap, a string for a
flag, a misspelt argument, a JSON-RPC id that is an object, a port that does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from fusion_mcp.cli.main import main
from fusion_mcp.server.app import create_server
from fusion_mcp.server.auth import token_problem
from tests.conftest import LAB_KEY, lab_toml, write_registry
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream


def _fusion(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY, **env}
    return subprocess.run([sys.executable, "-m", "fusion_mcp", *args], env=full, capture_output=True, text=True,
                          timeout=60)


def test_a_fifo_a_device_and_a_huge_file_in_the_folder_do_not_hang(upstream: Upstream, ensemble_dir: Path) -> None:
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha"]))
    os.mkfifo(ensemble_dir / "fifo.toml")
    (ensemble_dir / "zero.toml").symlink_to("/dev/zero")
    (ensemble_dir / "huge.toml").write_bytes(b"# padding\n" * 300_000)
    (ensemble_dir / "folder.toml").mkdir()
    done = _fusion(["ensembles", "--ensembles", str(ensemble_dir)], {})  # a hang fails at the timeout
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "lab" in out and "Traceback" not in out
    for name, why in (("fifo", "a FIFO"), ("zero", "a character device"), ("huge", "larger than"),
                      ("folder", "a folder")):
        line = next((ln for ln in out.splitlines() if f"{name}.toml" in ln), "")
        assert why in line, (name, out)


@pytest.mark.parametrize("token", ["password12345678", "0123456789abcdef", "x7Rq9Lm-x7Rq9Lm-x7Rq9Lm-x7Rq9Lm",
                                   "qwertyuiopasdfghjkl"])
def test_a_guessable_token_is_refused_with_how_to_make_one(token: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert token_problem(token) is not None
    code = main(["serve", "--transport", "streamable-http", "--host", "0.0.0.0", "--auth-token", token])
    err = capsys.readouterr().err
    assert code == 2 and "too easy to guess" in err and "secrets.token_urlsafe(32)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("token", ["test-token-0b1d3c5e7f", "X9qK_dMFERHuNDbfplFceQCNb-t8D2TST_PQY7R77FE",
                                   "cf7b14ea035bb27445d3f73e57dbc64f"])
def test_a_random_token_passes(token: str) -> None:
    assert token_problem(token) is None


def test_serve_on_a_port_that_does_not_exist_says_so_in_one_line(ensemble_dir: Path) -> None:
    done = _fusion(["serve", "--transport", "streamable-http", "--port", "70000"],
                   {"FUSION_MCP_ENSEMBLES": str(ensemble_dir)})
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --port must be between 1 and 65535, not 70000"


@pytest.fixture
def lab_server(upstream: Upstream, ensemble_dir: Path):
    for m in ("alpha", "beta"):
        upstream.script(m, text="Paris.")
    upstream.script("fuser", text="Paris.")
    return create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"], reviewer=None)))


@pytest.mark.anyio
@pytest.mark.parametrize("tool, args, expected", [
    ("fused_answer", {"question": "\x00\x00\x00"}, "only control characters"),
    ("fused_answer", {"question": "\x00\x01\u200b\n\x7f"}, "only control characters"),
    ("fused_answer", {"question": "Q?", "max_cost_usd": "inf"}, "max_cost_usd: "),
    ("fused_answer", {"question": "Q?", "max_cost_usd": "Infinity"}, "max_cost_usd: "),
    ("fused_answer", {"question": "Q?", "max_cost_usd": "nan"}, "max_cost_usd: "),
    ("fused_answer", {"question": "Q?", "deadline_s": "nan"}, "deadline_s: "),
    ("fused_answer", {"question": "Q?", "include_drafts": "yes"}, "include_drafts: "),
    ("fused_answer", {"question": "Q?", "include_drafts": 1}, "include_drafts: "),
    ("fused_answer", {"question": "Q?", "deadlin_s": 5}, "unknown argument 'deadlin_s'"),
    ("compare_drafts", {"question": "Q?", "x": 1, "y": 2}, "unknown arguments 'x', 'y'"),
    ("list_models", {"refresh": "yes"}, "refresh: "),
])
async def test_bad_arguments_get_one_clear_line(lab_server, upstream: Upstream, tool: str, args: dict,
                                                expected: str) -> None:
    async with Client(lab_server) as client:
        result = await client.call_tool(tool, {"ensemble": "lab", **args} if tool != "list_models" else args)
    text = result.content[0].text
    assert result.is_error and expected in text, text
    assert "\n" not in text.strip() and "Traceback" not in text
    assert not upstream.calls()  # refused before any model call


@pytest.mark.anyio
async def test_good_arguments_still_pass(lab_server) -> None:
    async with Client(lab_server) as client:
        result = await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "lab", "include_drafts": True,
                                                         "max_cost_usd": None})
    assert not result.is_error, result.content


@pytest.fixture
def http_base(upstream: Upstream, ensemble_dir: Path) -> Iterator[str]:
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha"], reviewer=None))
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY,
           "FUSION_MCP_ENSEMBLES": str(ensemble_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_port(port, proc, "fusion-mcp serve")
    yield f"http://127.0.0.1:{port}/mcp"
    stop_process(proc)


HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], True, 1.5, None])
def test_a_request_whose_id_is_not_a_string_or_integer_gets_invalid_request(http_base: str, bad_id: object) -> None:
    body = {"jsonrpc": "2.0", "id": bad_id, "method": "tools/list", "params": {}}
    answer = httpx.post(http_base, json=body, headers=HEADERS, timeout=30)
    assert answer.status_code == 400
    error = answer.json()
    assert error["id"] is None and error["error"]["code"] == -32600 and "id" in error["error"]["message"]
    ok = httpx.post(http_base, json={"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        headers=HEADERS, timeout=30)
    assert ok.status_code == 200  # the guard passes a good request on, body and all
