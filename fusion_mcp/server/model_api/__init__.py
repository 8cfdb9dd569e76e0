"""Fusion as a model: OpenAI- and Anthropic-compatible endpoints beside the MCP server (docs/model-api.md).

`fusion-mcp serve --transport streamable-http` puts `ModelAPI` in front of the MCP app, inside the
same token check and DNS-rebinding guard, on the same engine, limits and run store.
"""

from .routes import ModelAPI

__all__ = ["ModelAPI"]
