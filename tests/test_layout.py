"""The package's layout keeps its rules (docs/architecture.md): imports only point down the layers, no
module shadows a standard-library module, and the command line starts without the engine.

The import rules are read from the source with `ast` (every import: top level, inside functions, and
under TYPE_CHECKING), so a lazy import that runs upward is caught as well as a top-level one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fusion_mcp"
# Top to bottom: a module may import from its own layer or any layer below, never above.
LAYERS = ["cli", "server", "team", "evaluation", "fusion", "config", "web", "providers", "store", "base"]
# Below everything: fusion_mcp/errors.py, redaction.py (+ redaction_encodings.py), clock.py, prompts/, and the package's __version__.
BASE = {"errors", "redaction", "redaction_encodings", "clock", "prompts", "__version__"}
FACADES = {"__init__", "__main__"}
THIRD_PARTY = {"httpx", "httpx2", "mcp", "starlette", "pydantic", "pydantic_core", "rich", "anyio", "uvicorn", "redis"}  # fusion_mcp/__init__.py (lazy re-exports) and __main__.py (runs the CLI)


def layer_of(module: str) -> str | None:
    """The layer of a dotted fusion_mcp module name; None for the package's facades."""
    parts = module.split(".")
    if parts[0] != "fusion_mcp":
        raise ValueError(module)
    if len(parts) == 1 or parts[1] in FACADES:
        return None
    return "base" if parts[1] in BASE else parts[1]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, package_dir: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every fusion_mcp module `path` imports, with its line, relative imports resolved."""
    name = module_name(path, package_dir)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            if node.module is None:  # `from . import x`: each name may be a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, mod) for line, mod in found if mod == "fusion_mcp" or mod.startswith("fusion_mcp.")]


def upward_imports(package: Path = PACKAGE) -> list[str]:
    wrong = []
    for path in sorted(package.rglob("*.py")):
        here = layer_of(module_name(path, package))
        if here is None:
            continue
        for line, target in imported(path, package):
            there = layer_of(target)
            if there is None or LAYERS.index(there) < LAYERS.index(here):
                wrong.append(f"{path.relative_to(package.parent)}:{line} ({here}) imports {target} ({there or 'facade'})")
    return wrong


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - FACADES - {"__version__"}
    assert packages | modules <= set(LAYERS) | BASE, "add the new package to LAYERS (and docs/architecture.md)"


def test_imports_only_point_down_the_layers() -> None:
    assert upward_imports() == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule can fail: a store module importing the server is reported, even inside a function or
    under TYPE_CHECKING; importing downward is not."""
    package = tmp_path / "fusion_mcp"
    for folder in ("store", "server"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("", encoding="utf-8")
    (package / "store" / "runs.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..errors import ConfigError\n"
        "if TYPE_CHECKING:\n    from fusion_mcp.server import service\n"
        "def f():\n    from ..server.background import BackgroundRuns\n", encoding="utf-8")
    (package / "server" / "app.py").write_text("from ..store.runs import f\n", encoding="utf-8")
    assert upward_imports(package) == [
        "fusion_mcp/store/runs.py:4 (store) imports fusion_mcp.server (server)",
        "fusion_mcp/store/runs.py:6 (store) imports fusion_mcp.server.background (server)"]


def test_no_module_shadows_the_standard_library() -> None:
    """`python fusion_mcp/server/some_script.py` puts that folder first on sys.path: a module there named
    like a standard-library one (http.py) would shadow it for everything the script imports."""
    roots = [PACKAGE, PACKAGE.parent / "bench", PACKAGE.parent / "tests"]
    clashes = [str(p) for root in roots for p in root.rglob("*.py") if p.stem in sys.stdlib_module_names]
    clashes += [str(p) for p in PACKAGE.rglob("*") if p.is_dir() and p.name in sys.stdlib_module_names]
    assert clashes == []


def test_the_command_line_entry_does_not_load_the_engine() -> None:
    """Importing the CLI's entry module (what `fusion-mcp --help` pays for) loads no engine, no server
    but its light bind rules, no evaluation but its names, and none of pydantic, rich, anyio, the HTTP
    client or the MCP SDK: each command imports what it needs when it runs (bench/startup.py times it)."""
    code = "import sys, fusion_mcp.cli.main; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    modules = set(loaded.stdout.split())
    assert "fusion_mcp.cli.main" in modules
    light = {"fusion_mcp.server", "fusion_mcp.server.auth", "fusion_mcp.evaluation", "fusion_mcp.evaluation.names"}
    heavy = sorted(m for m in modules - light if m.split(".")[0] in THIRD_PARTY or m.startswith(tuple(
        f"fusion_mcp.{layer}" for layer in ("fusion", "server", "evaluation", "config", "providers", "store"))))
    assert heavy == []


def test_an_entry_script_run_as_a_file_starts() -> None:
    """`mcp dev fusion_mcp/server/mcp_entry.py` runs that file as a script (its folder first on sys.path)."""
    entry = PACKAGE / "server" / "mcp_entry.py"
    done = subprocess.run([sys.executable, str(entry)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_names_help_lists_are_the_real_ones() -> None:
    """`--help` reads dataset names from evaluation/names.py; they are the packaged datasets' own."""
    from fusion_mcp.evaluation.datasets import PACKAGED
    from fusion_mcp.evaluation.names import DATASETS

    assert DATASETS == tuple(PACKAGED)
