"""A provider backed by a Python function: deterministic pipeline tests and embedding, no HTTP.

    def answer(model: str, request: ChatRequest) -> str: ...
    engine = FusionEngine(registry, providers={"fn": FunctionProvider("fn", answer)})

The function may be sync or async and may return text or a whole `Completion`; raising one of the
project's `ProviderError`s simulates a failing model (as pydantic-ai's `FunctionModel` does).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

from .base import ChatRequest, Completion, TextSink, Usage

Answer = str | Completion
AnswerFn = Callable[[str, ChatRequest], Answer | Awaitable[Answer]]


class FunctionProvider:
    def __init__(self, name: str, fn: AnswerFn, *, cost_usd: float | None = 0.0) -> None:
        self.name = name
        self._fn = fn
        self._cost = cost_usd
        self.calls: list[tuple[str, ChatRequest]] = []

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        started = time.perf_counter()
        self.calls.append((model, request))
        if sink is not None:
            sink.begin()  # like a stream that has started: the answer's first byte is now due
        answer = self._fn(model, request)
        if inspect.isawaitable(answer):
            answer = await answer
        if sink is not None:
            sink.write(answer.text if isinstance(answer, Completion) else answer)
        if isinstance(answer, Completion):
            return answer
        return text_completion(self.name, model, request, answer, cost_usd=self._cost,
                               latency_s=time.perf_counter() - started)


def text_completion(provider: str, model: str, request: ChatRequest, text: str, *, cost_usd: float | None,
                    latency_s: float, input_tokens: int | None = None, output_tokens: int | None = None,
                    truncated: bool = False) -> Completion:
    """A completion for text made in this process: tokens counted as words unless given, the cost as
    reported by an upstream (None: unknown, as a provider that reports none)."""
    words = sum(len(m.content.split()) for m in request.messages)
    return Completion(
        provider=provider, model=model, text=text,
        usage=Usage(input_tokens=words if input_tokens is None else input_tokens,
                    output_tokens=len(text.split()) if output_tokens is None else output_tokens),
        cost_usd=cost_usd, cost_source="unknown" if cost_usd is None else "upstream",
        latency_s=latency_s, truncated=truncated, finish_reason="length" if truncated else None,
    )
