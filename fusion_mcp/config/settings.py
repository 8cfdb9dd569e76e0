"""Every setting of fusion-mcp, read once from the environment (and the command line's flags) into one
object that the command line and the server pass down; nothing else reads a FUSION_MCP_* variable.

Each field names its variable (`env`) and, where one exists, its flag; `Settings.from_env()` reads them,
checks each (a bad value is one error that names the variable and says what it must be) and records
where each effective value came from (`sources`: default, the variable, or a flag), which
`fusion-mcp config` prints with secrets masked. API keys are not settings: each provider's `api_key_env`
is read when a call needs it, and never stored (docs/security.md). docs/settings.md lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..providers.local_runtime import DEFAULT_N_CTX, DEFAULT_PARALLEL, DEFAULT_THREADS, RuntimeConfig
from ..store import DEFAULT_LEASE_S, REDIS_SCHEMES
from .pricing import Pricing

DEFAULT_TOOL_TIMEOUT_S = 40.0  # Claude Desktop ends a tool call at ~60 s; calls under ~30 s always arrive
DEFAULT_KEEPALIVE_S = 10.0  # proxies commonly cut a response that is silent for 30-100 s


def _field(default: Any, env: str, what: str, *, flag: str | None = None, secret: bool = False,
           low: float | None = None, high: float | None = None, unit: str = "seconds") -> Any:
    return Field(default=default, description=what, json_schema_extra={
        "env": env, "flag": flag, "secret": secret, "low": low, "high": high, "unit": unit})


class Settings(BaseModel):
    """The effective settings. Paths are None where the default (an XDG folder) applies: see the
    properties `cache_path`, `models_cache_dir` and `user_ensembles_dir` for the resolved ones."""

    ensembles: list[Path] = _field([], "FUSION_MCP_ENSEMBLES", "extra ensemble folders (os.pathsep-separated)",
                                   flag="--ensembles")
    default_ensemble: str | None = _field(None, "FUSION_MCP_DEFAULT_ENSEMBLE", "the ensemble used when none is named")
    cache: Path | None = _field(None, "FUSION_MCP_CACHE", "the call cache file (eval, tune; the paces live beside it)",
                                flag="--cache")
    paces: Path | None = _field(None, "FUSION_MCP_PACES", "your model paces (TOML), over the shipped priors")
    prices: Path | None = _field(None, "FUSION_MCP_PRICES", "your price table (TOML), over the shipped one")
    models_cache: Path | None = _field(None, "FUSION_MCP_MODELS_CACHE", "where providers' model listings are cached")
    tool_timeout_s: float = _field(DEFAULT_TOOL_TIMEOUT_S, "FUSION_MCP_TOOL_TIMEOUT",
                                   "seconds a tool call waits before answering `running`",
                                   flag="--tool-timeout", low=1, high=3600)
    keepalive_s: float = _field(DEFAULT_KEEPALIVE_S, "FUSION_MCP_KEEPALIVE_S",
                                "seconds of silence after which a model API stream sends a keep-alive",
                                low=0.05, high=120)
    store: str | None = _field(None, "FUSION_MCP_STORE", "where a server keeps shared state (redis://...)",
                               flag="--store", secret=True)
    lease_s: float = _field(DEFAULT_LEASE_S, "FUSION_MCP_LEASE_S",
                            "seconds a replica's claim on a run or slot lasts unless renewed", low=1, high=600)
    auth_token: str | None = _field(None, "FUSION_MCP_AUTH_TOKEN", "bearer token every HTTP request must carry",
                                    flag="--auth-token", secret=True)
    local_ctx: int = _field(DEFAULT_N_CTX, "FUSION_MCP_LOCAL_CTX", "the local model's context per call (tokens)",
                            low=512)
    local_parallel: int = _field(DEFAULT_PARALLEL, "FUSION_MCP_LOCAL_PARALLEL",
                                 "calls the local model generates at once", low=1)
    local_threads: int = _field(DEFAULT_THREADS, "FUSION_MCP_LOCAL_THREADS",
                                "CPU threads of the local model (default: half the cores)", low=1)
    confirm_over_usd: float | None = _field(None, "FUSION_MCP_CONFIRM_OVER",
                                            "ask the user before a run estimated over this (USD); unset: never",
                                            flag="--confirm-over", low=0, unit="usd")
    # The team endpoint (docs/team.md): OAuth sign-in, per-user budgets, metrics, the audit log.
    oauth_issuer: str | None = _field(None, "FUSION_MCP_OAUTH_ISSUER", "OAuth/OpenID issuer users sign in with",
                                      flag="--oauth-issuer")
    oauth_audience: str | None = _field(None, "FUSION_MCP_OAUTH_AUDIENCE", "the `aud` tokens must carry",
                                        flag="--oauth-audience")
    oauth_scope: str | None = _field(None, "FUSION_MCP_OAUTH_SCOPE", "a scope every token must carry",
                                     flag="--oauth-scope")
    oauth_admin_scope: str | None = _field(None, "FUSION_MCP_OAUTH_ADMIN_SCOPE",
                                           "a scope whose holders may read every user's runs",
                                           flag="--oauth-admin-scope")
    oauth_resource: str | None = _field(None, "FUSION_MCP_OAUTH_RESOURCE", "the endpoint's public URL",
                                        flag="--oauth-resource")
    user_budget_usd: float | None = _field(None, "FUSION_MCP_USER_BUDGET_USD",
                                           "each signed-in user's budget per day (UTC), USD",
                                           flag="--user-budget-usd", low=0, unit="usd")
    user_budgets: Path | None = _field(None, "FUSION_MCP_USER_BUDGETS", "a TOML file of per-user daily budgets",
                                       flag="--user-budgets")
    metrics_port: int | None = _field(None, "FUSION_MCP_METRICS_PORT", "serve Prometheus metrics on this port",
                                      flag="--metrics-port", low=1, high=65535)
    audit_log: str | None = _field(None, "FUSION_MCP_AUDIT_LOG", "append one JSON line per run here ('-': stderr)",
                                   flag="--audit-log")
    # OpenTelemetry's own opt-in (its GenAI instrumentations share it), so named by its convention.
    trace_content: bool = _field(False, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                                 "put question and answer text into trace spans", unit="bool")
    # Where the XDG defaults point (not settings of their own: the usual base folders).
    config_home: Path = Field(default_factory=lambda: Path.home() / ".config", exclude=True)
    data_home: Path = Field(default_factory=lambda: Path.home() / ".local" / "share", exclude=True)
    cache_home: Path = Field(default_factory=lambda: Path.home() / ".cache", exclude=True)
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)

    @classmethod
    def env_vars(cls) -> list[str]:
        """Every variable a setting reads (the tests' clean environment clears them all)."""
        return [meta(name)["env"] for name in cls.model_fields if meta(name)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """The settings from `environ` (default os.environ), then `flags` (None: not given) over them."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.model_fields:
            info = meta(name)
            if not info:
                continue
            raw = (env.get(info["env"]) or "").strip()
            if raw:
                values[name] = _parse(name, raw, info["env"])
                sources[name] = f"env {info['env']}"
        for name, value in flags.items():
            if value is not None and value != []:
                values[name] = value
                sources[name] = f"flag {meta(name).get('flag') or name}"
        for base, var in (("config_home", "XDG_CONFIG_HOME"), ("data_home", "XDG_DATA_HOME"),
                          ("cache_home", "XDG_CACHE_HOME")):
            if env.get(var):
                values[base] = Path(env[var]).expanduser()
        settings = cls(**values)
        if settings.store is not None:
            settings.store = _store_url(settings.store, sources.get("store", ""))
        settings.sources = sources
        return settings

    def with_flags(self, **flags: Any) -> Settings:
        """These settings with the flags a command was given (None: not given) over them."""
        given = {k: v for k, v in flags.items() if v is not None and v != []}
        out = self.model_copy(update=given)
        out.sources = {**self.sources, **{k: f"flag {meta(k).get('flag') or k}" for k in given}}
        if "store" in given:
            out.store = _store_url(given["store"], out.sources["store"])
        return out

    @property
    def local_runtime(self) -> RuntimeConfig:
        return RuntimeConfig(n_ctx=self.local_ctx, n_parallel=self.local_parallel, threads=self.local_threads)

    @property
    def cache_path(self) -> Path:
        return self.cache or self.data_home / "fusion-mcp" / "cache.sqlite3"

    @property
    def models_cache_dir(self) -> Path:
        return self.models_cache or self.cache_home / "fusion-mcp" / "models"

    @property
    def pricing(self) -> Pricing:
        """Where prices come from (your price file, the cached model listings, the shipped table), handed
        down to the engine, the cost model and the listings."""
        return Pricing(prices=self.prices, models_cache=self.models_cache_dir)

    @property
    def default_user_dir(self) -> Path:
        return self.config_home / "fusion-mcp" / "ensembles"

    @property
    def user_ensembles_dir(self) -> Path:
        """Where `tune --write` puts files: the first extra ensemble folder, else the default user folder."""
        return self.ensembles[0] if self.ensembles else self.default_user_dir

    def rows(self) -> list[tuple[str, str, str]]:
        """(variable, effective value, where it came from) per setting, secrets masked."""
        shown = {"cache": self.cache_path, "models_cache": self.models_cache_dir}
        out = []
        for name in self.model_fields:
            info = meta(name)
            if not info:
                continue
            value = shown.get(name, getattr(self, name))
            if isinstance(value, list):
                value = os.pathsep.join(str(v) for v in value)
            text = "" if value is None else str(value)
            if info["secret"] and text:
                text = _mask(text)
            out.append((info["env"], text or "(unset)", self.sources.get(name, "default")))
        return out


def meta(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def _parse(name: str, raw: str, var: str) -> Any:
    """One variable's text as its field's type, within its bounds; a ConfigError naming it otherwise."""
    info = meta(name)
    kind = next((t for t in get_args(Settings.model_fields[name].annotation) if t is not type(None)),
                Settings.model_fields[name].annotation)  # X | None: X
    if name == "ensembles":
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]
    if kind is Path:
        return Path(raw).expanduser()
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    if kind in (float, int):
        usd = info.get("unit") == "usd"
        try:
            value = kind(raw.removeprefix("$") if usd else raw)
        except ValueError:
            what = ("an amount in USD (e.g. 0.05)" if usd else "a number of seconds") if kind is float \
                else "a whole number"
            raise ConfigError(f"{var}={raw!r} is not {what}") from None
        low, high = info.get("low"), info.get("high")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise ConfigError(f"{var}={raw!r} must be {bounds}")
        return value
    return raw


def _store_url(url: str, source: str) -> str | None:
    """The store URL, None for the embedded store; an unknown kind is an error that never echoes a password."""
    url = url.strip()
    if url in ("", "memory", "embedded"):
        return None
    if not url.startswith(REDIS_SCHEMES):
        where = "--store" if source.startswith("flag") else "FUSION_MCP_STORE"
        shown = _mask(url)
        raise ConfigError(f"{where}={shown!r} is not a store this server knows: use redis://HOST:PORT/DB "
                          "(or rediss://, unix://), or leave it unset for the embedded store")
    return url


def _mask(text: str) -> str:
    """A secret shown as its first characters only; a URL keeps its address but not its password."""
    if "://" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://" + (f"***@{rest.rsplit('@', 1)[-1]}" if "@" in rest else rest)
    return text[:2] + "***" if len(text) > 8 else "***"
