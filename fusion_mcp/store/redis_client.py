"""Connecting to Redis: the optional client, one connection pool per store, a clear error when down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_CONNECTIONS = 64  # per replica; a command waits for a free one rather than failing
WAIT_FOR_CONNECTION_S = 30
# A command's answer waits at most this long: a paused or wedged Redis is then an error (the replica
# serves from its own memory, store/outage.py), not a call that hangs. Pub/sub reads are not bound.
COMMAND_TIMEOUT_S = 3.0


def connect(url: str) -> Redis:
    """A `redis.asyncio.Redis` for `url` (strings in and out); no I/O until first used."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise ConfigError("a redis:// store needs the Redis client: from a fusion-mcp clone, "
                          "pip install -e '.[shared]'") from None
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=30, socket_connect_timeout=5,
        socket_timeout=COMMAND_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION_S)
    return aioredis.Redis(connection_pool=pool)


async def check(client: Redis, url: str) -> None:
    """Fail at startup, not at the first tool call, when the store cannot be reached."""
    import redis.exceptions

    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        shown = url.split("://", 1)[-1].split("@")[-1]  # never echo a password in the URL
        raise ConfigError(f"cannot reach the store at {shown}: {str(exc).rstrip('.')}. Start Redis or fix --store / "
                          "FUSION_MCP_STORE") from None


async def probe(url: str) -> None:
    """Connect once and close: `serve` checks its store before it starts listening."""
    client = connect(url)
    try:
        await check(client, url)
    finally:
        await client.aclose()
