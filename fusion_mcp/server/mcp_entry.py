"""Entry file for `mcp dev` / `mcp run`: `mcp dev fusion_mcp/server/mcp_entry.py`.

Those commands load a file under a fake module name; importing the server from the package keeps
the tools' output schemas intact (see fusion_mcp/server/service.py).

`mcp dev` starts the Inspector around `uv run --with mcp==<version> [--with DEP ...] mcp run FILE`,
adding a `--with` for each of the server's `dependencies`. The `mcp` command in that environment
needs typer (the `cli` extra), or it stops with "typer is required": hence `mcp[cli]` here.
"""

from fusion_mcp.server.app import create_server

server = create_server()
server.dependencies = ["mcp[cli]"]  # read by `mcp dev`
