"""Serving over SSE or streamable HTTP with uvicorn, behind the bearer-token check when a token is set."""

import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

from .. import __version__
from .auth import BearerAuthMiddleware, RebindingGuard, transport_security


async def serve_http(server: MCPServer, transport: str, host: str, port: int, token: str | None,
                     allowed_hosts: list[str], *, stateless: bool = False) -> None:
    """`stateless`: streamable HTTP keeps no session in this process, so any replica behind a load
    balancer can answer any request (what a shared store is for)."""
    import uvicorn

    security = transport_security(host, allowed_hosts)
    if transport == "sse":
        app: Any = server.sse_app(host=host, transport_security=security)
        path = "/sse"
    else:
        app = server.streamable_http_app(host=host, transport_security=security, stateless_http=stateless)
        path = "/mcp"
    app = RebindingGuard(app, security)
    if token:
        app = BearerAuthMiddleware(app, token)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token (loopback only)"
    mode = ", stateless" if stateless and transport != "sse" else ""
    print(f"fusion-mcp {__version__}: {transport} on http://{shown}:{port}{path} ({auth}{mode})", file=sys.stderr,
          flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
