"""Ensemble files: the TOML format and its validation (the registry of files is ensemble_registry.py).

An ensemble is data: which models draft, which one reviews, which one synthesizes, and the
time budget. Its name is its file's name without `.toml`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..providers.spec import BUILTIN_PROVIDERS, ProviderSpec
from ..redaction import register_secret_env
from ..web.config import ToolName, WebConfig
from .files import UnreadableFile, read_config_bytes

DEFAULT_DEADLINE_S = 45.0
RoleName = Literal["drafter", "reviewer", "synthesizer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderTable(ProviderSpec):
    """A `[providers.NAME]` table: a ProviderSpec whose name is the table's key."""

    name: str = ""


class RoleTable(_Strict):
    model: str = Field(min_length=3)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    reasoning: Literal["minimal", "low", "medium", "high"] | None = None
    tools: list[ToolName] = Field(default_factory=list, description="web_search and/or web_fetch (docs/web.md).")


class DrafterTable(RoleTable):
    weight: float = Field(default=1.0, gt=0)
    web: bool = False


class EnsembleFile(_Strict):
    description: str = ""
    deadline_s: float = Field(default=DEFAULT_DEADLINE_S, gt=0, le=3600)
    min_drafts: int | None = Field(default=None, ge=1)
    review_analysis: bool = True
    skip_review_when_unanimous: bool = True
    providers: dict[str, ProviderTable] = Field(default_factory=dict)
    drafters: list[DrafterTable] = Field(min_length=1)
    reviewer: RoleTable | None = None
    synthesizer: RoleTable | None = None
    web: WebConfig | None = None


@dataclass(frozen=True)
class ModelRole:
    """One model in one role, its provider resolved."""

    provider: ProviderSpec
    model_id: str
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    weight: float = 1.0
    reasoning: str | None = None
    web: bool = False  # OpenRouter's web search plugin, for this drafter's calls
    tools: tuple[str, ...] = ()  # web_search, web_fetch: offered in this role's calls (fusion/tool_loop.py)

    @property
    def ref(self) -> str:
        return f"{self.provider.name}:{self.model_id}"


@dataclass(frozen=True)
class Ensemble:
    name: str
    path: Path | None
    description: str
    deadline_s: float
    min_drafts: int
    drafters: tuple[ModelRole, ...]
    reviewer: ModelRole | None
    synthesizer: ModelRole | None
    # The providers its model references may name: the built-in ones and its own tables.
    providers: dict[str, ProviderSpec] = field(default_factory=lambda: dict(BUILTIN_PROVIDERS))
    # The reviewer also compares the drafts (consensus, contradictions, ...); off for small models.
    review_analysis: bool = True
    skip_review_when_unanimous: bool = True
    web: WebConfig | None = None  # the [web] table; set whenever a role has tools

    @property
    def roles(self) -> list[tuple[RoleName, ModelRole]]:
        out: list[tuple[RoleName, ModelRole]] = [("drafter", d) for d in self.drafters]
        if self.reviewer:
            out.append(("reviewer", self.reviewer))
        if self.synthesizer:
            out.append(("synthesizer", self.synthesizer))
        return out

    def missing_keys(self, only: tuple[str, ...] | None = None) -> list[str]:
        """Environment variables this ensemble (or only the roles named, e.g. ("synthesizer",))
        needs that are not set."""
        missing: list[str] = []
        for name, role in self.roles:
            if only is not None and name not in only:
                continue
            var = role.provider.api_key_env
            if var and role.provider.key_required and not os.environ.get(var) and var not in missing:
                missing.append(var)
        searchers = [name for name, role in self.roles if "web_search" in role.tools and (only is None or name in only)]
        var = self.web.key_env if self.web is not None and searchers else None
        if var and not os.environ.get(var) and var not in missing:
            missing.append(var)
        return missing

    def missing_local(self, only: tuple[str, ...] | None = None) -> list[str]:
        """Why its local models (or only those of the roles named) cannot run here (a package or a
        model file missing), one line per cause; empty when none is local or all is installed."""
        from ..providers.local_runtime import missing_parts  # no runtime import: only looks for packages

        out: list[str] = []
        for name, role in self.roles:
            if role.provider.kind == "local" and (only is None or name in only):
                out += [m for m in missing_parts(role.model_id) if m not in out]
        return out

    def not_ready(self) -> list[str]:
        """Every reason it cannot run now, one line per cause (not per model)."""
        keys = self.missing_keys()
        return ([f"set {', '.join(keys)} in the environment"] if keys else []) + self.missing_local()

    @property
    def ready(self) -> bool:
        return not self.not_ready()


def _known_keys() -> set[str]:
    return {k for table in (EnsembleFile, ProviderTable, DrafterTable, WebConfig) for k in table.model_fields}


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(_known_keys()), n=1)
    if close and close[0] == key:
        return " here (it belongs in another table of the file: see docs/ensembles.md for the format)"
    return f" (did you mean {close[0]!r}?)" if close else " (see docs/ensembles.md for the ensemble format)"


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def split_model_ref(ref: str) -> tuple[str, str]:
    """`provider:model-id`, split at the first colon (OpenRouter ids keep slashes, Ollama ids colons)."""
    provider, sep, model_id = ref.partition(":")
    if not sep or not provider or not model_id:
        raise ValueError(f"model reference {ref!r} must look like 'provider:model-id'")
    return provider, model_id


def parse_ensemble(name: str, data: dict[str, Any], path: Path | None = None) -> Ensemble:
    """Validate one ensemble's data; errors name the file and the key."""
    where = str(path) if path else name
    try:
        parsed = EnsembleFile.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real one "missing": report the misspelling first.
        first = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = "unknown key" + _suggest(str(first["loc"][-1]))
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(problem + more, file=where, key=_key_path(first["loc"])) from None

    providers = dict(BUILTIN_PROVIDERS)
    for pname, table in parsed.providers.items():
        providers[pname] = ProviderSpec(**{**table.model_dump(), "name": pname})
        if table.api_key_env:
            register_secret_env(table.api_key_env)

    def resolve(table: RoleTable, key: str) -> ModelRole:
        try:
            pname, model_id = split_model_ref(table.model)
        except ValueError as exc:
            raise ConfigError(str(exc), file=where, key=f"{key}.model") from None
        spec = providers.get(pname)
        if spec is None:
            known = ", ".join(sorted(providers))
            raise ConfigError(
                f"unknown provider {pname!r}; use one of {known} or declare [providers.{pname}]",
                file=where,
                key=f"{key}.model",
            )
        tools = tuple(dict.fromkeys(table.tools))
        if tools and spec.kind not in ("openai", "anthropic"):
            raise ConfigError(f"tools need an openai or anthropic provider; {pname!r} is {spec.kind!r}",
                              file=where, key=f"{key}.tools")
        if "web_search" in tools and (parsed.web is None or parsed.web.search is None):
            raise ConfigError('web_search needs a search backend: add [web] with search = "searxng" (and search_url), '
                              '"brave", "tavily" or "exa" (docs/web.md)', file=where, key=f"{key}.tools")
        web = getattr(table, "web", False)
        if web and not spec.web_plugin:
            raise ConfigError(f"web = true needs OpenRouter's web plugin; {pname!r} has none",
                              file=where, key=f"{key}.web")
        return ModelRole(
            provider=spec,
            model_id=model_id,
            temperature=table.temperature,
            max_tokens=table.max_tokens,
            seed=table.seed,
            weight=getattr(table, "weight", 1.0),
            reasoning=table.reasoning,
            web=web,
            tools=tools,
        )

    drafters = tuple(resolve(d, f"drafters[{i}]") for i, d in enumerate(parsed.drafters))
    web_config = parsed.web
    if web_config is not None and web_config.key_env:
        register_secret_env(web_config.key_env)
    min_drafts = parsed.min_drafts or min(len(drafters), max(1, (len(drafters) + 1) // 2))
    if min_drafts > len(drafters):
        raise ConfigError(
            f"min_drafts is {min_drafts} but there are only {len(drafters)} drafters", file=where, key="min_drafts"
        )
    return Ensemble(
        name=name,
        path=path,
        description=parsed.description,
        deadline_s=parsed.deadline_s,
        min_drafts=min_drafts,
        drafters=drafters,
        reviewer=resolve(parsed.reviewer, "reviewer") if parsed.reviewer else None,
        synthesizer=resolve(parsed.synthesizer, "synthesizer") if parsed.synthesizer else None,
        providers=providers,
        review_analysis=parsed.review_analysis,
        skip_review_when_unanimous=parsed.skip_review_when_unanimous,
        web=web_config if web_config is not None else (WebConfig() if any(
            d.tools for d in parsed.drafters + [r for r in (parsed.reviewer, parsed.synthesizer) if r]) else None),
    )


def load_ensemble_file(path: Path) -> Ensemble:
    """One file as an Ensemble; whatever is wrong with it is a ConfigError naming it, so that one
    bad file never stops the others from loading."""
    try:
        raw = read_config_bytes(path)
    except UnreadableFile as exc:
        raise ConfigError(str(exc), file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
                          "save it as UTF-8", file=str(path)) from None
    try:
        data = tomllib.loads(text)
        return parse_ensemble(path.stem, data, path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    except RecursionError:
        raise ConfigError("nested too deeply to be an ensemble", file=str(path)) from None
    except (ValueError, TypeError) as exc:  # a value pydantic or tomllib met in a shape no file means
        raise ConfigError(f"cannot load: {type(exc).__name__}: {exc}", file=str(path)) from None
