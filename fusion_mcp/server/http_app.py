"""Serving over SSE or streamable HTTP with uvicorn, behind the bearer-token check when a token is set."""

import asyncio
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

from .. import __version__
from .auth import BearerAuthMiddleware, RebindingGuard, transport_security
from .event_store import RETRY_MS, MemoryEventStore
from .jsonrpc_guard import JsonRpcIdGuard


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
        app = server.streamable_http_app(host=host, transport_security=security, stateless_http=stateless,
                                         event_store=None if stateless else MemoryEventStore(), retry_interval=RETRY_MS)
        path = "/mcp"
        from .model_api import mount_model_api  # fusion as a model: /v1/... on the same port (docs/model-api.md)

        mount_model_api(app, server)
    app = RebindingGuard(JsonRpcIdGuard(app), security)
    if token:
        app = BearerAuthMiddleware(app, token)
    shown = f"[{host}]" if ":" in host else host
    if server.settings.auth is not None:  # OAuth: the SDK's app checks each token (team/oauth.py)
        auth = f"OAuth tokens from {server.settings.auth.issuer_url}"
    else:
        auth = "bearer token required" if token else "no token (loopback only)"
    mode = ", stateless" if stateless and transport != "sse" else ""
    api = f", model API on http://{shown}:{port}/v1" if transport != "sse" else ""
    print(f"fusion-mcp {__version__}: {transport} on http://{shown}:{port}{path}{api} ({auth}{mode})",
          file=sys.stderr, flush=True)
    # A connection still open SHUTDOWN_GRACE_S after SIGTERM (an idle SSE stream) is closed then.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    await _stopping_server(config, getattr(server, "fusion_service", None)).serve()


SHUTDOWN_GRACE_S = 3


def _stopping_server(config: Any, service: Any) -> Any:
    """uvicorn's server, which on SIGTERM/SIGINT also stops the runs at once (uvicorn alone waits for
    every request in flight, so a run went on to its deadline): the waiting tool calls answer that the
    server is shutting down, the upstream requests close, a shared store records the runs failed."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if service is None:
                return
            try:  # in a signal handler: the event loop does the work
                asyncio.get_running_loop().call_soon_threadsafe(service.background.shut_down)
            except RuntimeError:
                pass

    return Server(config)
