"""How big the server's tools/list is: the whole list, and what a host model reads on every turn
(the descriptions and input schemas), with the ensembles this install finds.

    .venv/bin/python bench/tools_list_size.py [--quick]

(`--quick` changes nothing: the measurement is one in-memory tools/list.) Run it with no
OPENROUTER_API_KEY and no user ensembles folder to measure the shipped ensembles alone, as
docs/tools.md does: `env -u OPENROUTER_API_KEY XDG_CONFIG_HOME=/nonexistent .venv/bin/python bench/tools_list_size.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client

from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.server.app import create_server


async def main() -> None:
    registry = EnsembleRegistry.load()
    async with Client(create_server(registry), mode="legacy") as client:
        tools = (await client.list_tools()).tools
    listed = json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])
    read = sum(len(t.description or "") + len(json.dumps(t.input_schema)) for t in tools)
    print(f"{len(tools)} tools, {len(registry.names())} ensembles: tools/list {len(listed):,} bytes; "
          f"descriptions + input schemas {read:,} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the same measurement (it is one call)")
    parser.parse_args()
    anyio.run(main)
