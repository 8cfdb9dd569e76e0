"""HTTP transport guards: a bearer token on every request, and the rules for where we may bind.

The MCP SDK's own auth is OAuth; a server shared on a LAN needs something simpler: one static
token that every request carries as `Authorization: Bearer <token>`. This is a plain ASGI
middleware around the SDK's app, so it covers every route (/mcp, /sse, /messages/) alike.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: the CLI reads AUTH_TOKEN_ENV without loading the SDK
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.types import ASGIApp, Receive, Scope, Send

AUTH_TOKEN_ENV = "FUSION_MCP_AUTH_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class BindError(ValueError):
    """The server was asked to listen somewhere it must not without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token: anyone on the network could spend the API keys."""
    if not is_loopback(host) and not token:
        raise BindError(
            f"refusing to listen on {host}: a non-loopback address needs a bearer token. "
            f"Set {AUTH_TOKEN_ENV} (or pass --auth-token) to a long random string, e.g. "
            f"`export {AUTH_TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`, "
            "and give clients the header 'Authorization: Bearer <token>'; or bind to 127.0.0.1."
        )


def transport_security(host: str, allowed_hosts: list[str] | None = None) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for every bind address.

    On loopback the SDK turns it on itself (None keeps its defaults). Elsewhere we turn it on and
    allow the Host names this machine is likely reached by, plus any the user lists.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if is_loopback(host) and not allowed_hosts:
        return None
    names = set(LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::"):
        names.add(host)
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.add(name)
    names.update(allowed_hosts or [])
    hosts, origins = [], []
    for name in sorted(names):
        bare = f"[{name}]" if ":" in name and not name.startswith("[") else name
        hosts += [bare, f"{bare}:*"]
        origins += [f"http://{bare}:*", f"https://{bare}:*", f"http://{bare}", f"https://{bare}"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerAuthMiddleware:
    """Answer 401 to any HTTP request whose Authorization header is not `Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("an empty bearer token would accept anyone")
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (and websocket, unused) pass through
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
                break
        scheme, _, credentials = given.partition(b" ")
        # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        why = "missing" if not given else "wrong"
        body = json.dumps({
            "error": "unauthorized",
            "message": f"{why} bearer token: send the header 'Authorization: Bearer <token>' "
                       f"with the token this server was started with ({AUTH_TOKEN_ENV})",
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="fusion-mcp"'),
            ],
        })
        await send({"type": "http.response.body", "body": body})
