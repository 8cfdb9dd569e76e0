"""The MCP surface, thin over the engine.

app (builds the server) · tools (the tools, at module level) · resources · schemas (what tools
return) · service (the lifespan state: engine, ensembles, runs) · runs (the run store) · background (runs
that outlive a tool call) · run_record (a run as every replica sees it through a shared store) · http (SSE
and streamable HTTP) · auth (bearer token, bind rules, DNS-rebinding) · mcp_entry (for `mcp dev`).
"""
