"""SIGTERM or SIGINT with a run in flight: the server stops accepting, cancels the run, answers the
waiting tool call that it is shutting down, closes its upstream requests and exits within 5 s
(it went on for 20-28 s, until the run's deadline, and the client got a connection error)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.conftest import LAB_KEY, lab_toml
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream


@pytest.mark.anyio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_with_a_run_in_flight_ends_the_server_within_5_s(upstream: Upstream, ensemble_dir: Path,
                                                                        sig: signal.Signals) -> None:
    upstream.script("alpha", text="Paris.", delay=30)  # still drafting when the signal comes
    upstream.script("beta", text="Paris.", delay=30)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], deadline_s=40))
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY,
           "FUSION_MCP_ENSEMBLES": str(ensemble_dir), "FUSION_MCP_TOOL_TIMEOUT": "50"}
    proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for_port(port, proc, "fusion-mcp serve")
        answers: list[object] = []
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            async def ask() -> None:
                try:
                    answers.append(await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"}))
                except Exception as exc:  # what the client saw, if not an answer
                    answers.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                with anyio.fail_after(20):
                    while len(upstream.calls()) < 2:  # both drafts are out
                        await anyio.sleep(0.05)
                signalled = time.monotonic()
                proc.send_signal(sig)
                with anyio.fail_after(15):
                    while proc.poll() is None:
                        await anyio.sleep(0.05)
                exited = time.monotonic() - signalled
        err = proc.stderr.read() if proc.stderr else ""
        assert exited < 5.0, (exited, err)
        assert "Traceback" not in err, err
        result = answers[0]
        assert isinstance(result, CallToolResult) and result.is_error, result
        assert "shutting down" in result.content[0].text
        with anyio.fail_after(5):
            while sorted(upstream.disconnects) != ["alpha", "beta"]:  # the upstream requests were closed
                await anyio.sleep(0.05)
    finally:
        stop_process(proc)
