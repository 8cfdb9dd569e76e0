"""Entry file for `mcp dev` / `mcp run`: `mcp dev fusion_mcp/server/mcp_entry.py`.

Those commands load a file under a fake module name; importing the server from the package keeps
the tools' output schemas intact (see fusion_mcp/server/service.py).
"""

from fusion_mcp.server.app import create_server

server = create_server()
