"""The one small interface every model provider implements, and the types that cross it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant"]
CostSource = Literal["upstream", "price_table", "local", "unknown"]


class Message(BaseModel):
    role: Role
    content: str


class ChatRequest(BaseModel):
    """What goes to a model: the provider turns it into its own wire format."""

    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Ask for JSON matching this schema where the provider can enforce it."
    )
    reasoning: str | None = Field(default=None, description="Reasoning effort (minimal, low, medium, high).")
    web: bool = Field(default=False, description="Ask the upstream's web search plugin (OpenRouter).")


class Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None


class Citation(BaseModel):
    url: str
    title: str | None = None


class Completion(BaseModel):
    """What comes back from a model call, with usage, cost and timing."""

    provider: str
    model: str
    text: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    cost_source: CostSource = "unknown"
    latency_s: float = 0.0
    ttft_s: float | None = Field(default=None, description="Time to the first token, when streamed.")
    output_tokens_per_s: float | None = Field(default=None, description="Output rate after the first token, when streamed.")
    attempts: int = 1
    cached: bool = False
    finish_reason: str | None = Field(default=None, description="The upstream's finish_reason / stop_reason.")
    truncated: bool = Field(default=False, description="Cut off by the output token limit.")
    citations: list[Citation] = Field(default_factory=list)


class TextSink:
    """Receives a streamed answer as it arrives, so a caller keeps the text written before a deadline.

    A provider calls `begin()` at the start of each attempt (a retry starts over) and `write()` per
    piece of text; `on_text` (optional) sees each piece too, e.g. to show an answer as it is written.
    The retrying wrapper (resilience.py) calls `dispatched()` when an attempt got its slots and goes
    out, and `throttled()` when it waits behind a rate limit: the time plan's evidence of a call that
    is queued, in flight, or writing (fusion/watch.py records when each happened).
    """

    def __init__(self, on_text: Callable[[str], None] | None = None) -> None:
        self._on_text = on_text
        self.parts: list[str] = []
        self.first_at: float | None = None
        self.sent = False  # False while the call still waits for a slot

        self._throttled = False  # a 429 on this call: it waits to retry
        self._limit_refusing: Callable[[], bool] | None = None  # whether the limit it queues on sees 429s

    def queued(self, limit_refusing: Callable[[], bool]) -> None:
        """The call waits for a slot on a limit; `limit_refusing()` says whether that limit's upstream
        is answering 429 lately."""
        self.sent = False
        self._limit_refusing = limit_refusing

    def dispatched(self) -> None:
        """An attempt got its slot under every limit and goes out."""
        self.sent = True
        self._throttled = False

    def throttled(self) -> None:
        """A 429 on this call: it waits to retry."""
        self.sent = False
        self._throttled = True

    @property
    def behind_rate_limit(self) -> bool:
        """Not sent, and waiting because its upstream is rate-limiting (a 429 on it or its model)."""
        if self.sent:
            return False
        return self._throttled or (self._limit_refusing is not None and self._limit_refusing())

    def begin(self) -> None:
        """A new attempt has been sent (it got its slot under every limit)."""
        self.parts.clear()
        self.first_at = None
        self.sent = True

    def write(self, text: str) -> None:
        if not text:
            return
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.parts.append(text)
        if self._on_text is not None:
            self._on_text(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@runtime_checkable
class Provider(Protocol):
    """Messages and parameters in; text, usage, cost and timing out; typed errors on failure.

    `timeout_s` bounds this one call (all retries included, for wrappers that retry). A provider that
    streams writes the text to `sink` as it arrives; one that does not may write it whole at the end.
    """

    name: str

    async def complete(
        self, model: str, request: ChatRequest, *, timeout_s: float, sink: TextSink | None = None
    ) -> Completion: ...
