"""The registry of ensembles: the shipped files, the user's folder, FUSION_MCP_ENSEMBLES and --ensembles,
loaded together (a broken file is named, the rest still load), and which one is the default."""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, NoReadyEnsembleError, UnknownEnsembleError
from .ensembles import Ensemble, load_ensemble_file
from .settings import Settings, meta


def _shipped_dir() -> Path:
    """The repository's ensembles/ in a source checkout; else the copy inside the installed package."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "ensembles").is_dir():
        return root / "ensembles"
    return Path(str(importlib.resources.files("fusion_mcp.shipped_ensembles")))


SHIPPED_DIR = _shipped_dir()
ENSEMBLES_ENV = meta("ensembles")["env"]  # named in messages; read by config/settings.py
DEFAULT_ENSEMBLE_ENV = meta("default_ensemble")["env"]
LOCAL_DEFAULT = "local"
OPENROUTER_DEFAULT = "budget-trio"


def user_ensembles_dir(settings: Settings | None = None) -> Path:
    """The user's own ensembles folder, where `fusion-mcp tune --write` puts files: the first folder
    of FUSION_MCP_ENSEMBLES when it is set, else the default user folder. Both are always loaded."""
    return (settings or Settings.from_env()).user_ensembles_dir


def ensemble_dirs(settings: Settings, extra: list[str | Path] | None = None) -> list[tuple[Path, str]]:
    """(folder, where it came from): shipped first, then the default user folder (when it exists),
    then FUSION_MCP_ENSEMBLES, then --ensembles; later folders win."""
    dirs = [(SHIPPED_DIR, "shipped")]
    user = settings.default_user_dir
    if user.is_dir():
        dirs.append((user, "the user folder"))
    dirs += [(folder, ENSEMBLES_ENV) for folder in settings.ensembles]
    dirs += [(Path(p).expanduser(), "--ensembles") for p in (extra or [])]
    return dirs


@dataclass
class EnsembleRegistry:
    """Every ensemble found, plus the files that failed to load (the rest still load)."""

    ensembles: dict[str, Ensemble] = field(default_factory=dict)
    errors: dict[str, ConfigError] = field(default_factory=dict)
    default_ensemble: str | None = None  # FUSION_MCP_DEFAULT_ENSEMBLE

    @classmethod
    def load(cls, extra_dirs: list[str | Path] | None = None, settings: Settings | None = None) -> EnsembleRegistry:
        """The shipped ensembles, the user's, those of FUSION_MCP_ENSEMBLES, then `extra_dirs` (later
        win); `settings` default to the environment's."""
        settings = settings or Settings.from_env()
        registry = cls(default_ensemble=settings.default_ensemble)
        for folder, source in ensemble_dirs(settings, extra_dirs):
            if not folder.is_dir():
                if source == "shipped":  # a broken install: say so, but keep the user's ensembles
                    registry.errors["(shipped)"] = ConfigError(
                        "the shipped ensemble folder is missing: reinstall from the clone (pip install -e .)",
                        file=str(folder),
                    )
                    continue
                # A folder the user named and that is not there is a mistake to stop at, not skip
                # (for example ensemble names given where a folder was expected).
                raise ConfigError(f"ensemble folder does not exist (given in {source})", file=str(folder))
            for path in sorted(folder.glob("*.toml")):
                registry.add_file(path)
        return registry

    def add_file(self, path: Path) -> None:
        try:
            ensemble = load_ensemble_file(path)
        except ConfigError as exc:
            self.errors[path.stem] = exc
            self.ensembles.pop(path.stem, None)
            return
        self.errors.pop(path.stem, None)
        self.ensembles[ensemble.name] = ensemble

    def names(self) -> list[str]:
        return sorted(self.ensembles)

    def get(self, name: str | None = None) -> Ensemble:
        """The named ensemble; None or a blank name means the default, the same over MCP and the CLI."""
        if name is None or not name.strip():
            name, _ = self.default()
        if name in self.ensembles:
            return self.ensembles[name]
        if name in self.errors:
            raise self.errors[name]
        raise UnknownEnsembleError(name, self.names())

    def default(self) -> tuple[str, str]:
        """The ensemble used when none is named, and why: never one that cannot run here."""
        chosen = self.default_ensemble
        if chosen:
            if chosen not in self.ensembles and chosen not in self.errors:
                raise UnknownEnsembleError(chosen, self.names(), where=DEFAULT_ENSEMBLE_ENV)
            return chosen, f"set by {DEFAULT_ENSEMBLE_ENV}"
        ready = [n for n in self.names() if self.ensembles[n].ready]
        if os.environ.get("OPENROUTER_API_KEY") and OPENROUTER_DEFAULT in ready:
            return OPENROUTER_DEFAULT, "OPENROUTER_API_KEY is set"
        if LOCAL_DEFAULT in ready:
            return LOCAL_DEFAULT, "no OPENROUTER_API_KEY: the embedded local model needs no key"
        if ready:
            return ready[0], "the first ensemble that is ready"
        if not self.names():
            raise UnknownEnsembleError("(default)", [])
        causes: dict[str, list[str]] = {}  # one entry per cause, naming the ensembles it stops
        for n in self.names():
            for why in self.ensembles[n].not_ready():
                causes.setdefault(why, []).append(n)
        why = "; ".join(f"{', '.join(names)}: {cause}" for cause, names in causes.items())
        raise NoReadyEnsembleError(f"no ensemble is ready to run ({why}); see `fusion-mcp ensembles`")
