"""Signing users in: the server as an OAuth 2.1 resource server, as the MCP authorization spec asks.

The issuer's metadata is discovered once at start-up (RFC 8414, else OpenID Connect discovery), its
signing keys (JWKS) are fetched on first use and cached, and fetched again when a token names a key
id not seen yet (at most once per REFETCH_S, so a stream of made-up key ids cannot make the server
hammer the issuer). Tokens are JWTs checked with PyJWT: signature, `iss`, `aud`, `exp`, `nbf`, with a
small clock skew; the user is `sub`. `JwtVerifier` is the SDK's `TokenVerifier`: the SDK answers 401
with `WWW-Authenticate: Bearer resource_metadata=...` and serves the protected resource metadata.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError

log = logging.getLogger("fusion_mcp")
ISSUER_ENV = "FUSION_MCP_OAUTH_ISSUER"
AUDIENCE_ENV = "FUSION_MCP_OAUTH_AUDIENCE"
SCOPE_ENV = "FUSION_MCP_OAUTH_SCOPE"
ADMIN_SCOPE_ENV = "FUSION_MCP_OAUTH_ADMIN_SCOPE"
RESOURCE_ENV = "FUSION_MCP_OAUTH_RESOURCE"
CLOCK_SKEW_S = 30
REFETCH_S = 30.0
FETCH_TIMEOUT_S = 10.0
# Asymmetric algorithms only: an HS* token would be "signed" with a key the issuer publishes.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
ADMIN_MARK = "fusion_mcp:admin"  # set in AccessToken.claims by the verifier, read by identity.py


@dataclass
class OAuthConfig:
    """What `serve --oauth-issuer` was given. `resource` is the MCP endpoint's public URL."""

    issuer: str
    audience: str
    resource: str
    required_scope: str | None = None
    admin_scope: str | None = None


def discovery_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be, in the order the MCP spec tries them: RFC 8414's path (the
    well-known part inserted before the issuer's path), then OpenID Connect discovery, inserted and appended."""
    parts = urlsplit(issuer)
    base, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    urls = [f"{base}/.well-known/oauth-authorization-server{path}"]
    if path:
        urls += [f"{base}/.well-known/openid-configuration{path}", f"{base}{path}/.well-known/openid-configuration"]
    else:
        urls.append(f"{base}/.well-known/openid-configuration")
    return urls


async def _get_json(url: str) -> Any:
    import httpx2 as httpx

    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
        response = await client.get(url, headers={"accept": "application/json"})
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    return response.json()


async def discover(issuer: str) -> dict[str, Any]:
    """The issuer's metadata; a ConfigError naming each place tried when none answers for this issuer."""
    tried = []
    for url in discovery_urls(issuer):
        try:
            meta = await _get_json(url)
        except Exception as exc:  # unreachable, not JSON, 404: try the next place
            tried.append(f"{url}: {str(exc) or type(exc).__name__}")
            continue
        if not isinstance(meta, dict) or meta.get("issuer") != issuer:
            tried.append(f"{url}: names issuer {meta.get('issuer') if isinstance(meta, dict) else None!r}")
            continue  # RFC 8414 §3.3: the metadata must be for exactly this issuer
        if not isinstance(meta.get("jwks_uri"), str):
            raise ConfigError(f"the OAuth issuer {issuer} publishes no jwks_uri at {url}: fusion-mcp needs its "
                              "signing keys to check tokens")
        return meta
    raise ConfigError(f"cannot read the metadata of OAuth issuer {issuer} ({'; '.join(tried)}). Check --oauth-issuer "
                      f"(or {ISSUER_ENV}): it must be the issuer exactly as it appears in tokens' `iss`")


class KeySet:
    """The issuer's JWKS, fetched on first use and again for an unknown key id, at most once per REFETCH_S."""

    def __init__(self, jwks_uri: str) -> None:
        import anyio

        self.jwks_uri = jwks_uri
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = -REFETCH_S
        self._lock = anyio.Lock()

    async def key(self, kid: str | None) -> Any:
        """The PyJWK for `kid` (a JWKS of one key may leave kids out), or None."""
        found = self._find(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._find(kid)
            if found is None and time.monotonic() - self._fetched_at >= REFETCH_S:
                await self._fetch()
                found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> Any:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        from jwt import PyJWKSet

        self._fetched_at = time.monotonic()
        try:
            jwks = PyJWKSet.from_dict(await _get_json(self.jwks_uri))
        except Exception as exc:  # keep the keys we have; tokens with unknown kids get 401 meanwhile
            log.warning("cannot fetch the OAuth issuer's keys from %s: %s", self.jwks_uri, exc)
            return
        self._keys = {k.key_id: k for k in jwks.keys}


def scopes_of(claims: dict[str, Any]) -> list[str]:
    """`scope` (RFC 9068: space-separated) or `scp` (Entra ID, Okta: a list or a string)."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return raw.split()
    return [str(s) for s in raw] if isinstance(raw, list) else []


class JwtVerifier:
    """The SDK's TokenVerifier over one issuer's JWTs for one audience; None (so 401) for any bad token."""

    def __init__(self, config: OAuthConfig, metadata: dict[str, Any]) -> None:
        self.config = config
        self.keys = KeySet(metadata["jwks_uri"])

    async def verify_token(self, token: str) -> Any:
        import jwt
        from mcp.server.auth.provider import AccessToken

        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not accepted")
            key = await self.keys.key(header.get("kid"))
            if key is None:
                raise jwt.InvalidKeyError(f"no key {header.get('kid')!r} in the issuer's JWKS")
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.config.audience,
                                issuer=self.config.issuer, leeway=CLOCK_SKEW_S,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            log.info("refused a bearer token: %s", exc)  # never the token itself
            return None
        scopes = scopes_of(claims)
        admin = self.config.admin_scope is not None and self.config.admin_scope in scopes
        return AccessToken(token=token, client_id=str(claims.get("azp") or claims.get("client_id") or claims["sub"]),
                           scopes=scopes, expires_at=int(claims["exp"]), resource=self.config.audience,
                           subject=str(claims["sub"]), claims={"iss": claims["iss"], ADMIN_MARK: admin})


def auth_settings(config: OAuthConfig) -> Any:
    """The SDK's AuthSettings for a resource server: it serves RFC 9728 metadata for `resource` and
    names it in every 401. The verifier checks the audience itself."""
    from mcp.server.auth.settings import AuthSettings

    return AuthSettings(issuer_url=config.issuer, resource_server_url=config.resource,  # type: ignore[arg-type]
                        required_scopes=[config.required_scope] if config.required_scope else None,
                        validate_token_resource=False)
