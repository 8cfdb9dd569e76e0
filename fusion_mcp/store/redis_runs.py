"""Runs in Redis: any replica reads a run, or waits for it, whichever replica executes it.

Per run: `{prefix}:run:{id}`, its record as JSON (kept `keep_s`, a day by default), and
`{prefix}:lease:{id}`, which exists while the executing replica is alive: it is renewed every third of
a lease (`heartbeat`) with the run's progress. A reader that finds a run `running` without a lease
marks it failed (one Lua step, so a late finish is not overwritten by a stale view): a replica killed
mid-run leaves no run `running` longer than one lease. A finished run is announced on
`{prefix}:done:{id}`, which wakes the replicas waiting for it; they also look again every second, so
a lapsed lease is noticed while waiting too.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from ..server.background import RunHandle
from ..server.run_record import RunRecord

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


class RedisRuns:
    """`SharedRuns` in Redis. `replica` names this process in records and errors."""

    def __init__(self, client: Any, prefix: str, lease_s: float, replica: str, keep_s: int = KEEP_S) -> None:
        self.client = client
        self.prefix = prefix
        self.lease_s = lease_s
        self.replica = replica
        self.keep_s = keep_s
        self.executing: dict[str, RunHandle] = {}
        self._lapse = client.register_script(_LAPSE)

    def _keys(self, run_id: str) -> tuple[str, str, str]:
        return f"{self.prefix}:run:{run_id}", f"{self.prefix}:lease:{run_id}", f"{self.prefix}:done:{run_id}"

    async def _write(self, handle: RunHandle, *, lease: bool) -> None:
        run_key, lease_key, _ = self._keys(handle.run_id)
        record = RunRecord.of_handle(handle, self.replica).model_dump_json()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(run_key, record, ex=self.keep_s)
            if lease:
                pipe.set(lease_key, self.replica, px=int(self.lease_s * 1000))
            await pipe.execute()

    async def started(self, handle: RunHandle) -> None:
        self.executing[handle.run_id] = handle
        await self._write(handle, lease=True)

    async def finished(self, handle: RunHandle) -> None:
        self.executing.pop(handle.run_id, None)
        run_key, lease_key, channel = self._keys(handle.run_id)
        record = RunRecord.of_handle(handle, self.replica)
        if record.status == "running":  # cancelled on shutdown before `done` was set
            record = record.model_copy(update={"status": "failed", "error": record.error or "the run was cancelled"})
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(run_key, record.model_dump_json(), ex=self.keep_s)
            pipe.delete(lease_key)
            pipe.publish(channel, record.status)
            await pipe.execute()

    async def heartbeat(self) -> None:
        """Renew the lease of every run executing here, with its progress so far."""
        for handle in list(self.executing.values()):
            if not handle.finished:
                await self._write(handle, lease=True)

    async def find(self, run_id: str) -> RunRecord | None:
        run_key, lease_key, channel = self._keys(run_id)
        raw = await self.client.get(run_key)
        if raw is None:
            return None
        record = RunRecord.model_validate_json(raw)
        if record.finished or run_id in self.executing or await self.client.exists(lease_key):
            return record
        failed = record.model_copy(update={"status": "failed", "error": lapsed_error(record.replica, self.lease_s)})
        if await self._lapse(keys=[run_key, lease_key, channel], args=[raw, failed.model_dump_json()]):
            return failed
        return await self.find(run_id)  # it changed meanwhile (finished, or renewed): read it again

    async def wait(self, run_id: str, timeout_s: float) -> RunRecord | None:
        """The run once finished, or as it stands after `timeout_s`; None when unknown."""
        _, _, channel = self._keys(run_id)
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(channel)  # before reading, so a finish in between is not missed
            end = anyio.current_time() + timeout_s
            while True:
                record = await self.find(run_id)
                left = end - anyio.current_time()
                if record is None or record.finished or left <= 0:
                    return record
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(POLL_S, left))
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()
