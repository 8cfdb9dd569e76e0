"""Who is calling, and whether they may see a run: the one ownership check every surface uses.

With `serve --oauth-issuer`, every request carries a verified token (the SDK's AccessToken) and the
user is its `sub`. Without it (stdio, a static bearer token, loopback) there is no signed-in user:
the server has one user, and every run is theirs. A run belongs to whoever started it; only they (or
a holder of the admin scope) may read it, and anyone else is told what an unknown id gets, so run ids
leak nothing.

    from fusion_mcp.team.identity import may_read, token_of
    if not may_read(record.owner, token_of(request_or_ctx)):
        raise <the unknown-run error>
"""

from __future__ import annotations

from typing import Any

from .oauth import ADMIN_MARK


def token_of(where: Any = None) -> Any:
    """The verified AccessToken of the current request, or None when the server signs no one in.

    `where` may be an MCP Context, a Starlette request, an ASGI scope, or None (the SDK's contextvar)."""
    if hasattr(where, "request_context"):  # an MCP Context: the HTTP request it came in
        where = getattr(where.request_context, "request", None)
    scope = getattr(where, "scope", where)
    token = getattr(scope.get("user"), "access_token", None) if isinstance(scope, dict) else None
    if token is not None:
        return token
    from mcp.server.auth.middleware.auth_context import get_access_token

    return get_access_token()


def user_of(token: Any) -> str | None:
    """The signed-in user (`sub`), or None when the server signs no one in."""
    return getattr(token, "subject", None) if token is not None else None


def is_admin(token: Any) -> bool:
    return token is not None and (getattr(token, "claims", None) or {}).get(ADMIN_MARK) is True


def may_read(owner: str | None, token: Any) -> bool:
    """Whether the caller with `token` may see a run started by `owner` (None: started with no sign-in)."""
    if token is None:
        return True  # no sign-in: one user, who owns every run
    return is_admin(token) or (owner is not None and owner == user_of(token))
