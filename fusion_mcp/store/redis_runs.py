"""Runs in Redis: any replica reads a run, or waits for it, whichever replica executes it.

Per run: `{prefix}:run:{id}`, its record as JSON (kept `keep_s`, a day by default), and
`{prefix}:lease:{id}`, which exists while the executing replica is alive: it is renewed every third of
a lease (`heartbeat`) with the run's progress. A reader that finds a run `running` without a lease
marks it failed (one Lua step, so a late finish is not overwritten by a stale view): a replica killed
mid-run leaves no run `running` longer than one lease. A finished run is announced on
`{prefix}:done:{id}`: each replica listens on one connection (`listen`) and wakes its waiters; they
also look again every second, so a lapsed lease is noticed while waiting too.

A run's fate is written once: finishing and renewing are compare-and-set steps that leave a run
another replica has already declared failed as it is, and the executing replica then adopts that
fate (it stops the run, and reports the same error), so replicas never disagree about a run. While
the store is down (store/outage.py) a run lives in this replica's memory; its end is written once
the store is back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Generic

import anyio

from .outage import StoreHealth, store_errors
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
# Write a run's record (and lease) unless its fate is already written: nil, or the record that stands.
# KEYS: run, lease, channel; ARGV: record, keep_s, lease_ms (0: the run ended: drop the lease and announce)
_WRITE = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' and record['status'] ~= 'running' then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', tonumber(ARGV[3]))
else
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', KEYS[3], ARGV[5])
end
return false
"""


def lapsed_error(replica: str, lease_s: float) -> str:
    return (f"the server replica running it ({replica}) stopped: its lease lapsed ({lease_s:g} s without "
            "renewal), so the run is lost; ask again")


class RedisRuns(EmbeddedRuns[R], Generic[R]):
    """A `RunStore` in Redis: this process's handles as in the embedded one, and every replica's records.
    `replica` names this process in records and errors; `record_type` reads a record back."""

    def __init__(self, client: Redis, prefix: str, lease_s: float, replica: str, record_type: type[RunRecord[R]],
                 keep_s: int = KEEP_S, beat_client: Redis | None = None, max_runs: int | None = None,
                 health: StoreHealth | None = None) -> None:
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
        self._write = client.register_script(_WRITE)
        self._write_beat = self.beat_client.register_script(_WRITE)
        self.health = health if health is not None else StoreHealth(client)
        self.decided: dict[str, str] = {}  # runs another replica declared failed: their error
        self.unpublished: dict[str, RunHandle[R]] = {}  # ended while the store was down

    def _keys(self, run_id: str) -> tuple[str, str, str]:
        return f"{self.prefix}:run:{run_id}", f"{self.prefix}:lease:{run_id}", f"{self.prefix}:done:{run_id}"

    async def _put(self, handle: RunHandle[R], *, ended: bool, beat: bool = False) -> None:
        """Write the run's record unless its fate is already written; if it is, adopt that fate."""
        run_key, lease_key, channel = self._keys(handle.run_id)
        record = self.record_type.of_handle(handle, self.replica)
        if ended:  # written just before `done` is set: its fate is its result
            done = handle.result is not None
            record = record.model_copy(update={"status": "done" if done else "failed",
                                               "error": None if done else handle.error or "the run was cancelled"})
        script = self._write_beat if beat else self._write
        standing = await script(keys=[run_key, lease_key, channel], args=[
            record.model_dump_json(), self.keep_s, 0 if ended else int(self.lease_s * 1000), self.replica,
            record.status])
        if standing:
            self._adopt(handle, self.record_type.model_validate_json(standing), ended=ended)

    def _adopt(self, handle: RunHandle[R], standing: RunRecord[R], *, ended: bool) -> None:
        """Another replica declared this run failed (its lease lapsed while the store was unreachable):
        stop it here too, and report the same error, so every replica tells the same fate."""
        if standing.status != "failed":
            return  # only this replica writes `done`: nothing to adopt
        error = standing.error or "the run failed"
        self.decided[handle.run_id] = error
        if ended or handle.finished:
            handle.result, handle.error = None, error
        else:
            handle.scope.cancel()

    async def started(self, handle: RunHandle[R]) -> None:
        await super().started(handle)
        self.executing[handle.run_id] = handle
        if self.health.down:
            return
        try:
            await self._put(handle, ended=False)
        except store_errors() as exc:
            self.health.failed(exc, "recording a run")

    async def finished(self, handle: RunHandle[R]) -> None:
        if handle.run_id in self.decided:
            handle.result, handle.error = None, self.decided[handle.run_id]
        await super().finished(handle)
        self.executing.pop(handle.run_id, None)
        if self.health.down:
            self.unpublished[handle.run_id] = handle
            return
        try:
            await self._put(handle, ended=True)
        except store_errors() as exc:
            self.health.failed(exc, "recording a run's end")
            if self.health.down:
                self.unpublished[handle.run_id] = handle

    async def publish_pending(self) -> None:
        """Once the store is back: write the runs that started or ended while it was down."""
        for run_id, handle in list(self.unpublished.items()):
            await self._put(handle, ended=True)
            self.unpublished.pop(run_id, None)
        await self.heartbeat()

    async def heartbeat(self) -> None:
        """Renew the lease of every run executing here, with its progress so far."""
        if self.health.down:
            return
        for handle in [h for h in self.executing.values() if not h.finished]:
            await self._put(handle, ended=False, beat=True)

    async def find(self, run_id: str, wait_s: float = 0.0) -> RunHandle[R] | RunRecord[R]:
        """This process's handle, else the shared record (waited for up to `wait_s`)."""
        handle = self.handles.get(run_id)
        if handle is not None:
            return handle
        record = await (self.wait(run_id, wait_s) if wait_s > 0 else self.record(run_id))
        if record is None:
            raise self.unknown(run_id)
        return record

    def unknown(self, run_id: str) -> UnknownRunError:
        return UnknownRunError(run_id, (
            f"unknown run id {run_id!r}: no replica sharing this server's store has it (runs are kept "
            f"{self.keep_s // 3600:g} h); run compare_drafts or fused_answer again to get a fresh run id"))

    def _unreachable(self, run_id: str) -> UnknownRunError:
        return UnknownRunError(run_id, (
            f"run {run_id!r} is not on this replica, and the shared store that holds the other replicas' runs "
            "cannot be reached right now; ask again in a few seconds"))

    async def record(self, run_id: str) -> RunRecord[R] | None:
        """The run's shared record; a running one whose lease lapsed is marked failed first. Raises
        UnknownRunError, saying so, while the store is down."""
        if self.health.down:
            raise self._unreachable(run_id)
        try:
            return await self._record(run_id)
        except store_errors() as exc:
            self.health.failed(exc, "reading a run")
            raise self._unreachable(run_id) from None

    async def _record(self, run_id: str) -> RunRecord[R] | None:
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
        return await self._record(run_id)  # it changed meanwhile (finished, or renewed): read it again

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
