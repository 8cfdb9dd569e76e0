"""A test OAuth authorization server on 127.0.0.1: RFC 8414 metadata and a JWKS over real HTTP, and
tokens signed with an RSA key generated when it starts (PyJWT signs; the server under test verifies).

`openid_only` serves only OpenID Connect discovery, to check the fallback.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


class AuthServer:
    def __init__(self, *, openid_only: bool = False) -> None:
        self.key = new_key()
        self.kid = "test-key-1"
        self.openid_only = openid_only
        self.jwks_fetches = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks",
                "authorization_endpoint": f"{self.issuer}/authorize", "token_endpoint": f"{self.issuer}/token",
                "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]}

    def token(self, sub: str, *, audience: str = "fusion", issuer: str | None = None, expires_in: float = 300,
              not_before: float | None = None, key: rsa.RSAPrivateKey | None = None, kid: str | None = None,
              scope: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "aud": audience, "iss": issuer or self.issuer, "iat": now,
                                  "exp": now + int(expires_in), "jti": uuid.uuid4().hex, "azp": "test-client"}
        if not_before is not None:
            claims["nbf"] = now + int(not_before)
        if scope is not None:
            claims["scope"] = scope
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/oauth-authorization-server" and not server.openid_only:
                    self._json(server.metadata())
                elif self.path == "/.well-known/openid-configuration":
                    self._json(server.metadata())
                elif self.path == "/jwks":
                    server.jwks_fetches += 1
                    self._json({"keys": [public_jwk(server.key, server.kid)]})
                else:
                    self.send_error(404)

            def _json(self, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def __enter__(self) -> AuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
