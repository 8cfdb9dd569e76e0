"""Watching a run's model calls from outside the engine: metrics, traces, usage ledgers.

The engine knows nothing of Prometheus or OpenTelemetry. A server hands it a `CallWatcher`; the one
place every call passes (`ModelCaller`) opens a watch around it and leaves the completion on it, so
the watcher sees each call's model, role, outcome, timing, usage and cost, and may keep a span open
for the call's duration.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..providers import Completion

ROLE_OF_STAGE = {"draft": "drafter", "review": "reviewer", "synthesis": "synthesizer"}


@dataclass
class CallWatch:
    """One call being watched: `model` (provider:model-id) in `role`; `completion` once it answered."""

    model: str
    role: str
    completion: Completion | None = None


class CallWatcher(Protocol):
    def watch(self, model: str, role: str) -> AbstractContextManager[CallWatch]:
        """A context around one model call. An exception leaving it is the call's failure
        (a `ProviderError`'s `kind`, or a cancellation); it must be re-raised, never swallowed."""
        ...
