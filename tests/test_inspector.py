"""The commands the README gives for the MCP Inspector start a server that works: each test runs the
exact server command the Inspector would launch, as a stdio MCP client session.

- `make inspect`: `npx -y @modelcontextprotocol/inspector <clone>/.venv/bin/fusion-mcp serve`.
- `mcp dev fusion_mcp/server/mcp_entry.py --with-editable .` (`make dev`): the Inspector around
  the `uv run ... mcp run FILE` command the SDK builds; without `mcp[cli]` in that environment it
  stops with "typer is required".
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[1]
INSPECTOR = "@modelcontextprotocol/inspector"
ENTRY = ROOT / "fusion_mcp" / "server" / "mcp_entry.py"


async def _session(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, bool]:
    """Tool name -> has an output schema, from a stdio session with the command; and one call."""
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(cwd), env=env)
    with anyio.fail_after(240):  # uv may have to fetch packages on a first run
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            listing = await session.call_tool("list_ensembles", {})
    assert not listing.is_error and "local" in listing.content[0].text
    return {t.name: t.output_schema is not None for t in tools}


def test_make_inspect_launches_a_working_server(tmp_path: Path) -> None:
    plan = subprocess.run(["make", "-n", "-s", "inspect"], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(line for line in plan.stdout.splitlines() if INSPECTOR in line)
    words = shlex.split(line)
    assert words[:3] == ["npx", "-y", INSPECTOR]  # -y: npx does not stop to ask before installing
    server = words[3:]
    assert Path(server[0]).is_absolute() and server[1:] == ["serve"]
    tools = anyio.run(_session, server, tmp_path, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert tools == {"fused_answer": True, "compare_drafts": True, "get_run": False, "list_ensembles": True,
                     "list_models": True}


def test_mcp_dev_launches_a_working_server(tmp_path: Path) -> None:
    from mcp.cli import cli  # needs typer, as `mcp dev` does

    server = cli._import_server(ENTRY, None)  # what `mcp dev` does first, to read the dependencies
    command = cli._build_uv_command(str(ENTRY), ROOT, list(set(server.dependencies)))
    assert command[:2] == ["uv", "run"] and "mcp[cli]" in command and command[-3:] == ["mcp", "run", str(ENTRY)]
    bin_dir = str(Path(sys.executable).parent)  # where `pip install uv` put uv
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    tools = anyio.run(_session, command, tmp_path, env)
    assert tools == {"fused_answer": True, "compare_drafts": True, "get_run": False, "list_ensembles": True,
                     "list_models": True}


@pytest.mark.parametrize("target", ["inspect", "dev"])
def test_the_make_targets_exist_and_say_what_they_run(target: str) -> None:
    plan = subprocess.run(["make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True, check=True)
    assert INSPECTOR in plan.stdout or "mcp dev fusion_mcp/server/mcp_entry.py --with-editable ." in plan.stdout
