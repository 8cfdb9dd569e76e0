"""Serving over SSE or streamable HTTP with uvicorn, behind the bearer-token check when a token is set."""

import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

from .. import __version__
from .auth import BearerAuthMiddleware, RebindingGuard, transport_security


async def serve_http(server: MCPServer, transport: str, host: str, port: int, token: str | None,
                     allowed_hosts: list[str]) -> None:
    import uvicorn

    security = transport_security(host, allowed_hosts)
    if transport == "sse":
        app: Any = server.sse_app(host=host, transport_security=security)
        path = "/sse"
    else:
        app = server.streamable_http_app(host=host, transport_security=security)
        path = "/mcp"
    app = RebindingGuard(app, security)
    if token:
        app = BearerAuthMiddleware(app, token)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token (loopback only)"
    print(f"fusion-mcp {__version__}: {transport} on http://{shown}:{port}{path} ({auth})", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
