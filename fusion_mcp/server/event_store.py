"""The streamable-HTTP event store: what lets a client that lost an SSE stream pick it up again.

With an event store the SDK opens every SSE response with a priming event (an event id, empty data,
and the `retry` interval: how long a client waits before reconnecting), as the 2025-11-25 protocol
asks, and replays what a client missed when it reconnects with `Last-Event-ID`. Kept in this
process's memory and bounded: the oldest events go first. (A stateless server behind a load balancer
keeps no streams, so it has none.)
"""

import itertools
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage

RETRY_MS = 2000  # the SSE `retry` field: reconnect after 2 s
MAX_EVENTS = 2000


class MemoryEventStore(EventStore):
    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self._events: OrderedDict[EventId, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        after = False
        for event_id, (stream, message) in list(self._events.items()):
            if after and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
            after = after or event_id == last_event_id
        return stream_id
