"""What `fusion-mcp tune` chooses among: candidate drafters, reviewers and synthesizers.

On the command line a model is `provider:model-id`, the provider built in or declared in any ensemble
file the registry loads. A TOML file (`@file.toml`) can also declare providers and give each model
options (temperature, seed, max_tokens) and a short name, so one model at several settings is
several candidates:

    [[candidates]]
    model = "local:smollm2"
    name = "smol-cold"
    temperature = 0.2
    seed = 1
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.ensemble_registry import EnsembleRegistry
from ..config.ensembles import ModelRole, parse_ensemble, split_model_ref
from ..errors import ConfigError
from ..providers.spec import BUILTIN_PROVIDERS, ProviderSpec
from .runner import resolve_provider

FILE_KEYS = ("providers", "candidates", "reviewers", "synthesizers")
NONE = "none"


@dataclass(frozen=True)
class Candidate:
    """A model at its settings, and the label the tables use for it."""

    label: str
    role: ModelRole


@dataclass
class Choices:
    """Everything tune may pick from. Empty reviewers/synthesizers: the best single candidate;
    None in the list: no reviewer (equal weights) / no synthesizer (the best-weighted draft)."""

    candidates: list[Candidate]
    reviewers: list[Candidate | None] = field(default_factory=list)
    synthesizers: list[Candidate | None] = field(default_factory=list)


def label_of(role: ModelRole) -> str:
    """`provider:model` plus the settings that tell it apart from the same model at others."""
    opts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (("temperature", role.temperature), ("seed", role.seed), ("max_tokens", role.max_tokens))
            if v is not None]
    return role.ref + (f" ({', '.join(opts)})" if opts else "")


def split_list(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _from_ref(ref: str, flag: str, registry: EnsembleRegistry, declared: dict[str, ProviderSpec]) -> Candidate:
    try:
        provider, model_id = split_model_ref(ref)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    spec = declared.get(provider) or resolve_provider(provider, registry, flag=flag)
    role = ModelRole(provider=spec, model_id=model_id)
    return Candidate(label_of(role), role)


def declared_providers(registry: EnsembleRegistry) -> dict[str, dict[str, Any]]:
    """The providers the loaded ensemble files declare, as `[providers.NAME]` tables."""
    return {r.provider.name: r.provider.model_dump(exclude={"name"}) for e in registry.ensembles.values()
            for _, r in e.roles if r.provider.name not in BUILTIN_PROVIDERS}


def _roles_from_file(path: Path, data: dict[str, Any], key: str, known: dict[str, dict[str, Any]]) -> list[Candidate]:
    """One list of the file, parsed as an ensemble's drafters so validation and errors match."""
    entries = data.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"'{key}' must be a list of tables ([[{key}]])", file=str(path), key=key)
    if not entries:
        return []
    names = [e.get("name") for e in entries]
    if any(n is not None and (not isinstance(n, str) or not n.strip()) for n in names):
        raise ConfigError("'name' must be a non-empty string", file=str(path), key=key)
    drafters = [{k: v for k, v in e.items() if k != "name"} for e in entries]
    try:
        providers = known | dict(data.get("providers") or {})
        ensemble = parse_ensemble(path.stem, {"providers": providers, "drafters": drafters}, path)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("[drafters[", f"[{key}[").replace("[drafters]", f"[{key}]")) from None
    return [Candidate(name.strip() if name else label_of(role), role)
            for name, role in zip(names, ensemble.drafters, strict=False)]


def load_file(path: Path, registry: EnsembleRegistry) -> tuple[dict[str, list[Candidate]], dict[str, ProviderSpec]]:
    """The lists of a candidates file, and the providers it declares."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the candidates file: {exc.strerror}", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(FILE_KEYS)}", file=str(path))
    known = declared_providers(registry)
    lists = {key: _roles_from_file(path, data, key, known) for key in FILE_KEYS[1:]}
    declared = {c.role.provider.name: c.role.provider for cs in lists.values() for c in cs}
    return lists, declared


def _unique(found: list[Candidate], flag: str) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for c in found:
        if c.label in seen:
            same = seen[c.label].role == c.role
            raise ConfigError(f"{flag}: {c.label!r} is listed twice" + (
                "" if same else " with different settings: give each a distinct 'name'"))
        seen[c.label] = c
    if len({c.role for c in found}) < len(found):
        raise ConfigError(f"{flag}: the same model at the same settings is listed twice under different names")
    return found


def load_choices(candidates: list[str] | None, reviewers: list[str] | None, synthesizers: list[str] | None,
                 registry: EnsembleRegistry) -> Choices:
    """Parse `--candidates/--reviewers/--synthesizers` (refs, `@file.toml`, or `none` for the roles)."""
    lists: dict[str, list[Candidate | None]] = {"candidates": [], "reviewers": [], "synthesizers": []}
    declared: dict[str, ProviderSpec] = {}
    given = {"candidates": split_list(candidates), "reviewers": split_list(reviewers),
             "synthesizers": split_list(synthesizers)}
    for entry in given["candidates"]:  # files first, so the providers they declare resolve plain refs
        if entry.startswith("@"):
            found, providers = load_file(Path(entry[1:]).expanduser(), registry)
            if not found["candidates"]:
                raise ConfigError("no [[candidates]] in the file", file=entry[1:])
            declared.update(providers)
            for key in lists:
                lists[key] += found[key]
    for key, entries in given.items():
        for entry in entries:
            if entry.startswith("@"):
                if key != "candidates":
                    raise ConfigError(f"--{key}: a file goes to --candidates (it may hold [[{key}]] too)")
                continue
            if key != "candidates" and entry.lower() == NONE:
                lists[key].append(None)
            else:
                lists[key].append(_from_ref(entry, f"--{key}", registry, declared))
    cands = _unique([c for c in lists["candidates"] if c is not None], "--candidates")
    if len(cands) < 2:
        raise ConfigError(f"--candidates: give at least two models to choose among (got {len(cands)}, with "
                          "--candidates-from included)")
    return Choices(candidates=cands, reviewers=_dedupe(lists["reviewers"]), synthesizers=_dedupe(lists["synthesizers"]))


def _dedupe(found: list[Candidate | None]) -> list[Candidate | None]:
    out: list[Candidate | None] = []
    for c in found:
        if c not in out:
            out.append(c)
    return out
