"""Build the MCP Bundle (`dist/fusion-mcp-<version>.mcpb`) that Claude Desktop installs with a double-click.

A bundle is a zip: manifest.json (packaging/mcpb/manifest.json, with the version of pyproject.toml;
also written beside the bundle, for `mcpb validate`), the entry script, pyproject.toml and the
package. Its server type is `uv`: the host installs the package and its dependencies from the
bundle's pyproject.toml into an environment it manages, so no dependency is bundled. Standard
library only; `make bundle` runs it.

    python packaging/build_bundle.py [--out dist]
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "mcpb"
PACKAGE_FILES = ("*.py", "*.txt", "*.html", "*.toml")  # what pyproject.toml ships of the package
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # the same sources make the same bytes


def manifest(version: str) -> str:
    data = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    data["version"] = version
    return json.dumps(data, indent=2) + "\n"


def members() -> list[tuple[str, Path]]:
    """(name in the bundle, file here): the package, the shipped ensembles, the project files."""
    found = [("pyproject.toml", ROOT / "pyproject.toml"), ("README.md", ROOT / "README.md"),
             ("server.py", HERE / "server.py")]
    for pattern in PACKAGE_FILES:
        for path in (ROOT / "fusion_mcp").rglob(pattern):
            if "__pycache__" not in path.parts:
                found.append((path.relative_to(ROOT).as_posix(), path))
    found += [(p.relative_to(ROOT).as_posix(), p) for p in (ROOT / "ensembles").glob("*.toml")]
    return sorted(found)


def build(out: Path) -> Path:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"fusion-mcp-{version}.mcpb"
    (out / "manifest.json").write_text(manifest(version), encoding="utf-8")  # beside it, for `mcpb validate`
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)

        add("manifest.json", manifest(version).encode())
        for name, path in members():
            add(name, path.read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the MCP Bundle (.mcpb) for Claude Desktop.")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder to write it to (default: dist)")
    target = build(parser.parse_args(argv).out)
    print(f"wrote {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target} "
          f"({target.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
