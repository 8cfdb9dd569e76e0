"""The one small interface every model provider implements, and the types that cross it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant", "tool"]
CostSource = Literal["upstream", "price_table", "local", "unknown"]


class ToolCall(BaseModel):
    """A model's request to run a tool: its id (echoed with the result), the tool's name, its arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolSpec(BaseModel):
    """A tool offered to the model: a name, what it does, its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


class Message(BaseModel):
    role: Role
    content: str
    tool_calls: list[ToolCall] | None = Field(default=None, description="An assistant turn that asked for tools.")
    tool_call_id: str | None = Field(default=None, description="A tool result (role `tool`): the call it answers.")


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
    tools: list[ToolSpec] | None = Field(default=None, description="Tools the model may call (fusion/tool_loop.py).")
    tool_choice: Literal["auto", "none"] | None = Field(default=None, description="`none`: answer now, no more tools.")


class Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None


class Citation(BaseModel):
    url: str
    title: str | None = None
    snippet: str | None = None


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
    output_tokens_per_s: float | None = Field(default=None,
                                              description="Output rate after the first token, when streamed.")
    attempts: int = 1
    cached: bool = False
    finish_reason: str | None = Field(default=None, description="The upstream's finish_reason / stop_reason.")
    truncated: bool = Field(default=False, description="Cut off by the output token limit.")
    citations: list[Citation] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list, description="Tools the model asked to run.")


class TextSink:
    """Receives a streamed answer as it arrives, so a caller keeps the text written before a deadline.

    A provider calls `begin()` at the start of each attempt (a retry starts over) and `write()` per
    piece of text; `on_text` (optional) sees each piece too, e.g. to show an answer as it is written.
    The retrying wrapper (resilience.py) calls `dispatched()` when an attempt got its slots and goes
    out, and `throttled()` when it waits behind a rate limit: the time plan's evidence of a call that
    is queued, in flight, or writing (fusion/watch.py records when each happened).
    """

    def __init__(self, on_text: Callable[[str], None] | None = None, limit: int | None = None) -> None:
        self._on_text = on_text
        self.parts: list[str] = []
        self.first_at: float | None = None
        self.sent = False  # False while the call still waits for a slot
        self.limit = limit  # characters kept at most (the caller's reply cap); None: no cap
        self.cut = False  # the reply ran past `limit`: the provider stops reading it
        self._size = 0
        self._throttled = False  # a 429 on this call: it waits to retry
        self._limit_refusing: Callable[[], bool] | None = None  # whether the limit it queues on sees 429s
        self.on_admitted: Callable[[], None] | None = None  # the upstream took the attempt on (`admitted`)
        self._admitted = False

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
        self._admitted = False
        self.sent = True
        self.cut = False
        self._size = 0

    def admitted(self) -> None:
        """The upstream took this attempt on: a streamed reply's success headers (an upstream without
        room answers 429 instead, at once), or else its first text. Once per attempt."""
        if not self._admitted:
            self._admitted = True
            if self.on_admitted is not None:
                self.on_admitted()

    def write(self, text: str) -> None:
        if not text or self.cut:
            return
        if self.limit is not None and self._size + len(text) > self.limit:
            text = text[:max(0, self.limit - self._size)]
            self.cut = True
            if not text:
                return
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.admitted()
        self.parts.append(text)
        self._size += len(text)
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
