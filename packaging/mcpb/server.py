"""The bundle's entry point: `uv run server.py` in the unpacked bundle starts the stdio MCP server.

A host that runs a `uv` bundle installs the project from the bundle's pyproject.toml into its own
environment first, so `fusion_mcp` imports from there.
"""

from fusion_mcp.cli.main import main

raise SystemExit(main(["serve"]))
