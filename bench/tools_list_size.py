"""How many bytes a host pays for this server's tools on every turn: the tools/list result as compact
JSON, per protocol era (the 2025-11-25 handshake carries MCP tasks' `execution` fields), per tool, and
the part a host model reads to choose a tool (each tool's name, description and input schema; the
output schemas, annotations and `_meta` are for the host, not its model).

The descriptions name the ensembles found and whether each is ready, so run it with no user ensembles
and no API key for the figures in the docs (bench/reproduce.sh does).

    .venv/bin/python bench/tools_list_size.py [--quick]
"""

from __future__ import annotations

import argparse
import json

import anyio
from mcp import Client

from fusion_mcp.server.app import create_server


def compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def main() -> None:
    server = create_server()
    for mode in ("legacy", "auto"):
        async with Client(server, mode=mode) as client:
            tools = (await client.list_tools()).model_dump(by_alias=True, mode="json", exclude_none=True)["tools"]
            sizes = {t["name"]: compact(t) for t in tools}
            read = compact([{k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in tools])
            print(f"{client.protocol_version}: tools/list {compact(tools):,} bytes, {len(tools)} tools ("
                  + ", ".join(f"{name} {size:,}" for name, size in sizes.items())
                  + f"); what a host model reads (names, descriptions, input schemas) {read:,} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the same (it takes a second)")
    parser.parse_args()
    anyio.run(main)
