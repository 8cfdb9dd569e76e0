"""How many bytes a host pays for this server's tools on every turn: the tools/list result as compact
JSON, per protocol era (the 2025-11-25 handshake carries MCP tasks' `execution` fields), per tool.

    .venv/bin/python bench/tools_list_size.py
"""

from __future__ import annotations

import json

import anyio
from mcp import Client

from fusion_mcp.server.app import create_server


async def main() -> None:
    server = create_server()
    for mode in ("legacy", "auto"):
        async with Client(server, mode=mode) as client:
            tools = (await client.list_tools()).model_dump(by_alias=True, mode="json", exclude_none=True)["tools"]
            sizes = {t["name"]: len(json.dumps(t, separators=(",", ":"))) for t in tools}
            whole = len(json.dumps(tools, separators=(",", ":")))
            print(f"{client.protocol_version}: tools/list {whole:,} bytes ("
                  + ", ".join(f"{name} {size:,}" for name, size in sizes.items()) + ")")


if __name__ == "__main__":
    anyio.run(main)
