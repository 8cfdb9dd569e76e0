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


MIN_TOKEN_LEN = 16
MIN_TOKEN_DISTINCT = 8


def token_problem(token: str) -> str | None:
    """Why a bearer token is too weak to guard a server, or None: one a guess or a typo could match."""
    if token != token.strip() or any(ch.isspace() for ch in token):
        return "it contains spaces"
    if len(token) < MIN_TOKEN_LEN:
        return f"it is {len(token)} characters long; use at least {MIN_TOKEN_LEN}"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"it uses only {len(set(token))} different characters; use a random string"
    from .token_strength import MIN_TOKEN_BITS, token_bits  # here: `fusion-mcp --help` reads this module

    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS:
        return (f"it is too easy to guess (about {bits:.0f} bits, {MIN_TOKEN_BITS} needed: words, runs such as 1234 "
                "and repeats count for little)")
    return None


_MAKE_TOKEN = (f"`export {AUTH_TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`")


def check_bind(host: str, token: str | None, *, signs_in: bool = False) -> None:
    """Refuse a non-loopback bind without a strong token (or OAuth sign-in, `signs_in`): anyone on the
    network could spend the API keys. A token given for a loopback bind must be strong too, or it guards nothing."""
    if token is not None:
        problem = token_problem(token)
        if problem:
            raise BindError(f"refusing the bearer token: {problem}. Set {AUTH_TOKEN_ENV} (or --auth-token) "
                            f"to a long random string, e.g. {_MAKE_TOKEN}.")
    if not is_loopback(host) and not token and not signs_in:
        raise BindError(
            f"refusing to listen on {host}: a non-loopback address needs a bearer token. "
            f"Set {AUTH_TOKEN_ENV} (or pass --auth-token) to a long random string, e.g. {_MAKE_TOKEN}, "
            "and give clients the header 'Authorization: Bearer <token>'; or bind to 127.0.0.1."
        )


def transport_security(host: str, allowed_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """DNS-rebinding protection for every bind address, loopback ones included (the SDK's own
    default covers only 127.0.0.1, localhost and ::1, not 127.0.0.2 and the rest of 127/8).

    On loopback, allow the loopback names and the bound address; elsewhere also the Host names this
    machine is likely reached by. Plus any the user lists.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    names = set(LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::"):
        names.add(host.strip("[]"))
    if not is_loopback(host):
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


class RebindingGuard:
    """Check Host and Origin on every HTTP request before the SDK's app sees it. The SDK checks too,
    but its SSE endpoint then raises after answering, and uvicorn logs a traceback per rejection."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        from mcp.server.transport_security import TransportSecurityMiddleware

        self.app = app
        self._check = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from starlette.requests import Request

            rejection = await self._check.validate_request(Request(scope), is_post=False)
            if rejection is not None:
                await rejection(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BearerAuthMiddleware:
    """Answer 401 to any HTTP request that carries neither `Authorization: Bearer <token>` nor
    `x-api-key: <token>` (how Anthropic's clients send a key; docs/model-api.md)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("an empty bearer token would accept anyone")
        self.app = app
        self._expected = token.encode()

    def _accepts(self, scope: Scope) -> tuple[bool, bool]:
        """(accepted, any credentials given)."""
        given = False
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = True
                scheme, _, credentials = value.partition(b" ")
                # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
                if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
                    return True, True
            elif name == b"x-api-key":
                given = True
                if hmac.compare_digest(value.strip(), self._expected):
                    return True, True
        return False, given

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (and websocket, unused) pass through
            await self.app(scope, receive, send)
            return
        accepted, given = self._accepts(scope)
        if accepted:
            await self.app(scope, receive, send)
            return
        why = "wrong" if given else "missing"
        message = (f"{why} bearer token: send the header 'Authorization: Bearer <token>' (or 'x-api-key: <token>') "
                   f"with the token this server was started with ({AUTH_TOKEN_ENV})")
        if scope.get("path", "").startswith("/v1/"):  # the model API: an error both SDKs parse
            payload: dict[str, object] = {"type": "error", "error": {
                "type": "authentication_error", "message": message, "code": "invalid_api_key"}}
        else:
            payload = {"error": "unauthorized", "message": message}
        body = json.dumps(payload).encode()
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
