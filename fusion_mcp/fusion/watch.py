"""What a call in flight has shown so far, on the time plan's clock: the evidence stragglers are
judged by (queued or sent, behind a rate limit or not, first byte or not, how fast it writes)."""

from __future__ import annotations

from collections.abc import Callable

from ..clock import Clock
from ..providers.base import TextSink

CHARS_PER_TOKEN = 4.0  # to count a stream's tokens before its usage arrives


class CallWatch(TextSink):
    """A text sink that stamps, on `clock`, when the call went out, its first byte and its last."""

    def __init__(self, clock: Clock, on_text: Callable[[str], None] | None = None) -> None:
        super().__init__(on_text)
        self.clock = clock
        self.asked_at = clock.now()
        self.sent_at: float | None = None
        self.streaming = False  # the stream has started: its first byte is due
        self.first_byte_at: float | None = None
        self.last_byte_at: float | None = None
        self.chars = 0

    def dispatched(self) -> None:
        super().dispatched()
        self.sent_at = self.clock.now()

    def throttled(self) -> None:
        super().throttled()
        self.sent_at = None
        self.streaming = False

    def queued(self, limit_refusing: Callable[[], bool]) -> None:
        super().queued(limit_refusing)
        self.sent_at = None
        self.streaming = False

    def begin(self) -> None:
        super().begin()
        if self.sent_at is None:  # a provider used without the retrying wrapper
            self.sent_at = self.clock.now()
        self.streaming = True
        self.first_byte_at = self.last_byte_at = None
        self.chars = 0

    def write(self, text: str) -> None:
        super().write(text)
        if not text:
            return
        now = self.clock.now()
        if self.first_byte_at is None:
            self.first_byte_at = now
        self.last_byte_at = now
        self.chars += len(text)

    @property
    def tokens(self) -> float:
        return self.chars / CHARS_PER_TOKEN

    def rate(self) -> float | None:
        """Tokens a second since the first byte, once it has written for a while."""
        if self.first_byte_at is None or self.last_byte_at is None:
            return None
        span = self.last_byte_at - self.first_byte_at
        return self.tokens / span if span >= 0.2 and self.tokens >= 2 else None
