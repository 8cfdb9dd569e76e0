"""Prometheus metrics of a server: runs, model calls, their time, cost, load and the call cache.

`serve --metrics-port N` serves them at http://127.0.0.1:N/metrics (`--metrics-host` to bind
elsewhere). Labels are ensembles, models, roles and outcomes only: never a user id or any text a user
wrote, so the number of series stays bounded and the metrics can be shared with whoever runs Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Model calls take from a fraction of a second (a cache hit, the first token) to minutes (a long synthesis).
CALL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class Metrics:
    """The server's metrics in their own registry (not the process-wide default, so tests and
    embedders can hold several)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("fusion_runs", "Runs ended, by ensemble, outcome (ok, degraded, failed, cancelled) "
                            "and where the answer came from", ["ensemble", "outcome", "answer_source"], registry=r)
        self.calls = Counter("fusion_model_calls", "Model calls ended, by model, role and status (ok or how it failed)",
                             ["model", "role", "status"], registry=r)
        self.call_seconds = Histogram("fusion_model_call_duration_seconds", "Seconds a model call took, answered "
                                      "or not", ["model", "role"], buckets=CALL_BUCKETS, registry=r)
        self.ttft_seconds = Histogram("fusion_model_time_to_first_token_seconds", "Seconds to a streamed call's "
                                      "first token", ["model", "role"], buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Counter("fusion_model_tokens", "Tokens the models read (input) and wrote (output)",
                              ["model", "role", "direction"], registry=r)
        self.cost = Counter("fusion_cost_usd", "US dollars the runs cost (calls whose cost is known)", ["ensemble"],
                            registry=r)
        self.cache_hits = Counter("fusion_cache_hits", "Model calls answered from the shared call cache",
                                  ["model", "role"], registry=r)
        self.in_flight = Gauge("fusion_runs_in_flight", "Runs executing on this replica", registry=r)
        self.queued = Gauge("fusion_runs_queued", "Runs waiting for a free slot (--max-running) on this replica",
                            registry=r)

    def count_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from `depth` at every scrape."""
        self.queued.set_function(lambda: float(depth()))

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve /metrics on a thread of its own (it answers even while the event loop is busy)."""
        from prometheus_client import start_http_server

        return start_http_server(port, addr=host, registry=self.registry)
