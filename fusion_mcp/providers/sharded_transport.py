"""The model calls' HTTP transport: several small connection pools in place of one large one.

httpx's pool (httpcore) walks every connection it holds, and every queued request, each time a request
starts or ends: with hundreds of calls in flight that walk was the largest single cost of a fused call
(bench/load.py under py-spy). Split into shards of SHARD_SIZE connections, a walk covers one shard.
A request goes to the first shard with room, so that calls one at a time keep reusing the same warm
connections and a shard is only opened once the ones before it are full; when every shard is full, to
the one with the fewest requests open.

The sharded transport is the client's own transport, not a mount: httpx still builds its proxy mounts
from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), and a host in NO_PROXY goes straight out
through the shards.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from http.cookiejar import CookieJar
from typing import Any

import httpx2 as httpx

SHARD_SIZE = 16
_HTTPX_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _NoCookies(CookieJar):
    """Model APIs take a key, not a session: a cookie a gateway sets (a load balancer's) is not kept,
    which spares every reply a parse of its headers into a cookie jar."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


class _ModelAPIClient(httpx.AsyncClient):
    """An httpx client whose own transport is sharded. Passing `transport=` would turn the environment's
    proxies off, and mounting the shards on "all://" would replace an ALL_PROXY mount: building the
    default transport here keeps both as a plain client has them."""

    def _init_transport(self, verify: ssl.SSLContext | str | bool = True, cert: Any = None,
                        trust_env: bool = True, http1: bool = True, http2: bool = False,
                        limits: httpx.Limits = _HTTPX_DEFAULT_LIMITS,
                        transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return ShardedTransport(limits, verify=verify)


def model_api_client(limits: httpx.Limits, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The client every provider shares: sharded pools, one TLS context, no cookies; proxies from the
    environment apply as they do for any httpx client."""
    return _ModelAPIClient(timeout=timeout, limits=limits, verify=httpx.create_ssl_context(),
                           cookies=_NoCookies())


class _Counted(httpx.AsyncByteStream):
    """A response body that gives its request's place in the shard back when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, owner: ShardedTransport, shard: int) -> None:
        self._stream = stream
        self._owner = owner
        self._shard: int | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._stream.__aiter__()
        try:
            async for chunk in chunks:
                yield chunk
        finally:  # a body read only in part (a reply cap, a deadline): its generator closes now, not later
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._shard is not None:
                self._owner.release(self._shard)
                self._shard = None


class ShardedTransport(httpx.AsyncBaseTransport):
    """`max_connections` split over pools of at most SHARD_SIZE each, opened when first needed."""

    def __init__(self, limits: httpx.Limits, *, verify: ssl.SSLContext | str | bool = True,
                 shard_size: int = SHARD_SIZE) -> None:
        total = limits.max_connections or 1024
        self._count = max(1, -(-total // shard_size))  # ceiling division
        self._per_shard = per_shard = -(-total // self._count)
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
        for shard, load in enumerate(loads):
            if load < self._per_shard:
                return shard
        if len(loads) == self._count:  # every shard open and full: the request queues in the least busy
            return min(range(len(loads)), key=loads.__getitem__)
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
