"""The MCP surface, thin over the engine.

app (builds the server) · tools (the tools, at module level) · resources · schemas (what tools
return) · service (the lifespan state: engine, ensembles, the store) · background (runs that outlive a
tool call; the store keeps them: store/runs.py) · http_app (SSE and streamable HTTP) · auth (bearer
token, bind rules, DNS-rebinding) · mcp_entry (for `mcp dev`).
"""
