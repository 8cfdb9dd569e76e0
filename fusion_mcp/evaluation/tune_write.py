"""`tune --write NAME`: the recommendation as a ready ensemble file in the user's ensembles folder,
with a comment saying how it was chosen and on what data, so `ensembles`, `ask` and the server find it."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path

from ..config.ensemble_registry import user_ensembles_dir
from ..config.ensembles import DEFAULT_DEADLINE_S, ModelRole, parse_ensemble
from ..errors import ConfigError
from ..providers.spec import BUILTIN_PROVIDERS
from .recommend import Option

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _value(v: object) -> str:
    return json.dumps(v, ensure_ascii=False)  # a TOML basic string, number or boolean


def _role_lines(role: ModelRole, weight: bool = False) -> list[str]:
    lines = [f"model = {_value(role.ref)}"]
    for key in ("temperature", "seed", "max_tokens"):
        v = getattr(role, key)
        if v is not None:
            lines.append(f"{key} = {_value(v)}")
    if weight and role.weight != 1.0:
        lines.append(f"weight = {_value(role.weight)}")
    return lines


def ensemble_toml(option: Option, provenance: list[str], deadline_s: float | None) -> str:
    """The file's text: the provenance as comments, then a valid ensemble."""
    roles = [c.role for c in option.members]
    roles += [c.role for c in (option.reviewer, option.synthesizer) if c is not None]
    lines = [f"# {line}" if line else "#" for line in provenance]
    lines += ["", f"description = {_value('Chosen by fusion-mcp tune: ' + option.label)}",
              f"deadline_s = {_value(deadline_s or DEFAULT_DEADLINE_S)}"]
    declared: dict[str, object] = {}
    for role in roles:
        spec = role.provider
        if BUILTIN_PROVIDERS.get(spec.name) == spec or spec.name in declared:
            continue
        declared[spec.name] = spec
        lines += ["", f"[providers.{spec.name}]"]
        fields = spec.model_dump(exclude={"name"}, exclude_defaults=True)
        fields.setdefault("kind", spec.kind)
        lines += [f"{k} = {_value(v)}" for k, v in fields.items()]
    for c in option.members:
        lines += ["", "[[drafters]]", *_role_lines(c.role, weight=True)]
    for table, chosen in (("reviewer", option.reviewer), ("synthesizer", option.synthesizer)):
        if chosen is not None and len(option.members) > 1:
            lines += ["", f"[{table}]", *_role_lines(chosen.role)]
    return "\n".join(lines) + "\n"


def target(name: str, *, force: bool = False, folder: Path | None = None) -> Path:
    """Where NAME.toml goes; checked before the tune starts, so a bad name costs no call."""
    if not NAME.match(name):
        raise ConfigError(f"--write {name!r}: an ensemble name is letters, digits, '-', '_' and '.', "
                          "starting with a letter or digit")
    path = (folder or user_ensembles_dir()) / f"{name}.toml"
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to replace it, or --write another name")
    return path


def write_ensemble(name: str, text: str, *, force: bool = False, folder: Path | None = None) -> Path:
    """Validate the text as an ensemble, then write NAME.toml; an existing file needs `force`."""
    path = target(name, force=force, folder=folder)
    folder = path.parent
    parse_ensemble(name, tomllib.loads(text), path)  # never write a file the registry would reject
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the ensemble: {exc.strerror}", file=str(path)) from None
    return path


def provenance(option: Option, how: str, data: str, reasons: list[str]) -> list[str]:
    """The comment block: when, how, on what data, and why."""
    out = [f"Written by `fusion-mcp tune` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", how, data, "",
           f"Chosen: {option.label}", "Why:"]
    out += [f"  - {r}" for r in reasons]
    return out
