"""The runs this server process has made, kept in memory so a host can look at one again.

Bounded: the oldest run is dropped once `max_runs` are kept, so a long-lived server does not grow
without limit. Nothing is written to disk (a run holds the user's question and the drafts).
"""

from __future__ import annotations

from collections import OrderedDict

from ..fusion.result import FusionResult

DEFAULT_MAX_RUNS = 100


class UnknownRunError(LookupError):
    def __init__(self, run_id: str, kept: int, max_runs: int) -> None:
        self.run_id = run_id
        super().__init__(
            f"unknown run id {run_id!r}: this server process keeps its last {max_runs} runs in memory "
            f"({kept} now) and forgets them on restart; run compare_drafts again to get a fresh run id"
        )


class RunStore:
    def __init__(self, max_runs: int = DEFAULT_MAX_RUNS) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.max_runs = max_runs
        self._runs: OrderedDict[str, FusionResult] = OrderedDict()

    def put(self, result: FusionResult) -> None:
        self._runs[result.run_id] = result
        self._runs.move_to_end(result.run_id)
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)

    def get(self, run_id: str) -> FusionResult:
        try:
            return self._runs[run_id]
        except KeyError:
            raise UnknownRunError(run_id, len(self._runs), self.max_runs) from None

    def __len__(self) -> int:
        return len(self._runs)
