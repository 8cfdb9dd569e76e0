"""Fusion as a model: OpenAI- and Anthropic-compatible endpoints beside the MCP server (docs/model-api.md).

`fusion-mcp serve --transport streamable-http` mounts `/v1/...` in the MCP app (`mount_model_api`),
inside the same token check and DNS-rebinding guard, on the same engine, limits and run store.
"""

from .routes import ModelAPI, mount_model_api

__all__ = ["ModelAPI", "mount_model_api"]
