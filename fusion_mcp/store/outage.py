"""When the shared store (Redis) fails: what to say, once, and when it is back.

A replica whose store is down (killed, paused, unreachable) or full (Redis at `maxmemory`) keeps
serving: new runs live in its own memory, calls skip the shared cache, provider limits count in this
process only. `StoreHealth` says so once in the log, with no internal address, checks every second
whether the store answers again, and says so once when it does. The store's operations ask `down`
first, so that while it is down no call waits on it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("fusion_mcp")
PROBE_EVERY_S = 1.0
FULL_HINT = ("Redis reached its `maxmemory`: raise `maxmemory` or set `maxmemory-policy allkeys-lru` "
             "in redis.conf (or CONFIG SET), or free memory")


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a store operation raises when the store, not the code, is at fault."""
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, TimeoutError)


def is_full(exc: BaseException) -> bool:
    import redis.exceptions

    return isinstance(exc, redis.exceptions.OutOfMemoryError) or "maxmemory" in str(exc)


def describe(exc: BaseException) -> str:
    """One line on what is wrong with the store, without its address (an error's text names it)."""
    import redis.exceptions

    if is_full(exc):
        return f"the store is full: {FULL_HINT}"
    if isinstance(exc, (redis.exceptions.TimeoutError, TimeoutError)):
        return "the store did not answer in time"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "the store is still loading its data"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "the store is a read-only replica"
    if isinstance(exc, (redis.exceptions.ConnectionError, OSError)):
        return "the store cannot be reached"
    return f"the store failed ({type(exc).__name__})"


class StoreHealth:
    """Whether the store answers; `failed` and `recovered` log each change once."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.down = False
        self._said_full = False

    def failed(self, exc: BaseException, doing: str = "") -> None:
        """A store operation failed: a full store is said once (it still answers reads); any other
        failure marks it down until a probe answers."""
        if is_full(exc):
            if not self._said_full:
                self._said_full = True
                log.warning("%s; runs started meanwhile live in this replica's memory only", describe(exc))
            return
        if not self.down:
            self.down = True
            what = f" ({doing})" if doing else ""
            log.warning("%s%s: serving new runs from this replica's memory until it is back", describe(exc), what)

    def recovered(self) -> None:
        if self.down:
            self.down = False
            log.warning("the store is back: runs, the call cache and provider limits are shared again")

    async def watch(self, on_recovery: Any = None) -> None:
        """While down, ping every second; on the first answer, mark it up (then `on_recovery()`)."""
        while True:
            await anyio.sleep(PROBE_EVERY_S)
            if not self.down:
                continue
            try:
                with anyio.fail_after(PROBE_EVERY_S * 2):
                    await self.client.ping()
            except store_errors():  # still down (fail_after's TimeoutError included)
                continue
            self.recovered()
            if on_recovery is not None:
                await on_recovery()
