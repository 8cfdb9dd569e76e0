"""Runs in Redis: any replica reads a run, or waits for it, whichever replica executes it.

Per run: `{prefix}:run:{id}`, its record as JSON (kept `keep_s`, a day by default), and
`{prefix}:lease:{id}`, which exists while the executing replica is alive: it is renewed every third of
a lease (`heartbeat`) with the run's progress. A reader that finds a run `running` without a lease
marks it failed (one Lua step, so a late finish is not overwritten by a stale view): a replica killed
mid-run leaves no run `running` longer than one lease. A finished run is announced on
`{prefix}:done:{id}`: each replica listens on one connection (`listen`) and wakes its waiters; they
also look again every second, so a lapsed lease is noticed while waiting too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Generic

import anyio

from .runs import DEFAULT_MAX_RUNS, EmbeddedRuns, R, RunHandle, RunRecord, UnknownRunError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("fusion_mcp")
KEEP_S = 24 * 3600
POLL_S = 1.0

_LAPSE = """
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  redis.call('PUBLISH', KEYS[3], 'failed')
  return 1
end
return 0
"""


def lapsed_error(replica: str, lease_s: float) -> str:
    return (f"the server replica running it ({replica}) stopped: its lease lapsed ({lease_s:g} s without "
            "renewal), so the run is lost; ask again")


class RedisRuns(EmbeddedRuns[R], Generic[R]):
    """A `RunStore` in Redis: this process's handles as in the embedded one, and every replica's records.
    `replica` names this process in records and errors; `record_type` reads a record back."""

    def __init__(self, client: Redis, prefix: str, lease_s: float, replica: str, record_type: type[RunRecord[R]],
                 keep_s: int = KEEP_S, beat_client: Redis | None = None, max_runs: int | None = None) -> None:
        super().__init__(max_runs or DEFAULT_MAX_RUNS)
        self.record_type = record_type
        self.client = client
        self.beat_client = beat_client or client  # leases never wait behind other traffic for a connection
        self.prefix = prefix
        self.lease_s = lease_s
        self.replica = replica
        self.keep_s = keep_s
        self.executing: dict[str, RunHandle[R]] = {}
        self._waiters: dict[str, anyio.Event] = {}
        self._lapse = client.register_script(_LAPSE)

    def _keys(self, run_id: str) -> tuple[str, str, str]:
        return f"{self.prefix}:run:{run_id}", f"{self.prefix}:lease:{run_id}", f"{self.prefix}:done:{run_id}"

    def _queue_write(self, pipe: Any, handle: RunHandle[R]) -> None:
        run_key, lease_key, _ = self._keys(handle.run_id)
        pipe.set(run_key, self.record_type.of_handle(handle, self.replica).model_dump_json(), ex=self.keep_s)
        pipe.set(lease_key, self.replica, px=int(self.lease_s * 1000))

    async def started(self, handle: RunHandle[R]) -> None:
        await super().started(handle)
        self.executing[handle.run_id] = handle
        async with self.client.pipeline(transaction=True) as pipe:
            self._queue_write(pipe, handle)
            await pipe.execute()

    async def finished(self, handle: RunHandle[R]) -> None:
        await super().finished(handle)
        self.executing.pop(handle.run_id, None)
        run_key, lease_key, channel = self._keys(handle.run_id)
        record = self.record_type.of_handle(handle, self.replica)
        if record.status == "running":  # cancelled on shutdown before `done` was set
            record = record.model_copy(update={"status": "failed", "error": record.error or "the run was cancelled"})
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(run_key, record.model_dump_json(), ex=self.keep_s)
            pipe.delete(lease_key)
            pipe.publish(channel, record.status)
            await pipe.execute()

    async def heartbeat(self) -> None:
        """Renew the lease of every run executing here, with its progress so far: one round trip."""
        running = [h for h in self.executing.values() if not h.finished]
        if running:
            async with self.beat_client.pipeline(transaction=False) as pipe:
                for handle in running:
                    self._queue_write(pipe, handle)
                await pipe.execute()

    async def find(self, run_id: str, wait_s: float = 0.0) -> RunHandle[R] | RunRecord[R]:
        """This process's handle, else the shared record (waited for up to `wait_s`)."""
        handle = self.handles.get(run_id)
        if handle is not None:
            return handle
        record = await (self.wait(run_id, wait_s) if wait_s > 0 else self.record(run_id))
        if record is None:
            raise UnknownRunError(run_id, (
                f"unknown run id {run_id!r}: no replica sharing this server's store has it (runs are kept "
                f"{self.keep_s // 3600:g} h); run compare_drafts or fused_answer again to get a fresh run id"))
        return record

    async def record(self, run_id: str) -> RunRecord[R] | None:
        """The run's shared record; a running one whose lease lapsed is marked failed first."""
        run_key, lease_key, channel = self._keys(run_id)
        raw = await self.client.get(run_key)
        if raw is None:
            return None
        record = self.record_type.model_validate_json(raw)
        if record.finished or run_id in self.executing or await self.client.exists(lease_key):
            return record
        failed = record.model_copy(update={"status": "failed", "error": lapsed_error(record.replica, self.lease_s)})
        if await self._lapse(keys=[run_key, lease_key, channel], args=[raw, failed.model_dump_json()]):
            return failed
        return await self.record(run_id)  # it changed meanwhile (finished, or renewed): read it again

    async def wait(self, run_id: str, timeout_s: float) -> RunRecord[R] | None:
        """The run once finished, or as it stands after `timeout_s`; None when unknown."""
        end = anyio.current_time() + timeout_s
        while True:
            woken = self._waiters.setdefault(run_id, anyio.Event())  # before reading: no finish is missed
            record = await self.record(run_id)
            left = end - anyio.current_time()
            if record is None or record.finished:
                self._waiters.pop(run_id, None)  # others waiting on it see it finished at their next look
                return record
            if left <= 0:
                return record
            with anyio.move_on_after(min(POLL_S, left)):
                await woken.wait()

    async def listen(self) -> None:
        """Wake the waiters of each run announced finished, for as long as the server runs."""
        pubsub = self.client.pubsub()
        try:
            await pubsub.psubscribe(f"{self.prefix}:done:*")
            async for message in pubsub.listen():
                if message.get("type") == "pmessage":
                    run_id = str(message["channel"]).rsplit(":", 1)[-1]
                    event = self._waiters.pop(run_id, None)
                    if event is not None:
                        event.set()
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()
