"""The model calls' HTTP transport: several small connection pools in place of one large one.

httpx's pool (httpcore) walks every connection it holds, and every queued request, each time a request
starts or ends: with hundreds of calls in flight that walk was the largest single cost of a fused call
(bench/load.py under py-spy). Split into shards of SHARD_SIZE connections, a walk covers one shard.
A request goes to the shard with the fewest requests open, the lowest first on a tie, so that calls
one at a time keep reusing the same warm connections and a shard is only opened once the ones before
it are busy.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar
from typing import Any

import httpx2 as httpx

SHARD_SIZE = 16


class _NoCookies(CookieJar):
    """Model APIs take a key, not a session: a cookie a gateway sets (a load balancer's) is not kept,
    which spares every reply a parse of its headers into a cookie jar."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


def model_api_client(limits: httpx.Limits, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The client every provider shares: sharded pools, one TLS context, no cookies. A proxy set in the
    environment (HTTPS_PROXY, NO_PROXY) still applies: its mounts are more specific than "all://"."""
    tls = httpx.create_ssl_context()
    return httpx.AsyncClient(timeout=timeout, limits=limits, verify=tls, cookies=_NoCookies(),
                             mounts={"all://": ShardedTransport(limits, verify=tls)})


class _Counted(httpx.AsyncByteStream):
    """A response body that gives its request's place in the shard back when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: ShardedTransport, shard: int) -> None:
        self._stream = stream
        self._owner = release
        self._shard: int | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._shard is not None:
                self._owner.release(self._shard)
                self._shard = None


class ShardedTransport(httpx.AsyncBaseTransport):
    """`max_connections` split over pools of at most SHARD_SIZE each, opened when first needed."""

    def __init__(self, limits: httpx.Limits, *, verify: ssl.SSLContext | bool = True,
                 shard_size: int = SHARD_SIZE) -> None:
        total = limits.max_connections or 1024
        self._count = max(1, -(-total // shard_size))  # ceiling division
        per_shard = -(-total // self._count)
        keepalive = limits.max_keepalive_connections
        self._limits = httpx.Limits(max_connections=per_shard,
                                    max_keepalive_connections=None if keepalive is None else
                                    -(-keepalive // self._count),
                                    keepalive_expiry=limits.keepalive_expiry)
        self._verify = verify
        self._shards: list[httpx.AsyncHTTPTransport] = []
        self.open_requests: list[int] = []

    @property
    def shards(self) -> int:
        """How many pools may open (the ones open so far: `len(open_requests)`)."""
        return self._count

    def _pick(self) -> int:
        loads = self.open_requests
        if loads:
            least = min(range(len(loads)), key=loads.__getitem__)
            if loads[least] < self._limits.max_connections or len(loads) == self._count:  # type: ignore[operator]
                return least
        if self._verify is True:  # one TLS context for every shard: each costs a read of the CA bundle
            self._verify = httpx.create_ssl_context()
        self._shards.append(httpx.AsyncHTTPTransport(verify=self._verify, limits=self._limits))
        self.open_requests.append(0)
        return len(self._shards) - 1

    def release(self, shard: int) -> None:
        self.open_requests[shard] -= 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = self._pick()
        self.open_requests[shard] += 1
        try:
            response = await self._shards[shard].handle_async_request(request)
        except BaseException:
            self.release(shard)
            raise
        response.stream = _Counted(response.stream, self, shard)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
