"""What a new user meets first: readiness that tells the truth, one line per cause, exit codes,
output that fits 80 columns, a blank question refused, "did you mean", and help with examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fusion_mcp.cli.main import main
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.errors import NoReadyEnsembleError
from tests.conftest import lab_toml, review_json
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parents[1]
LONG = "a-very-long-provider-model-name-that-will-not-fit-in-a-narrow-column-v2"


def _run(args: list[str], folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FUSION_MCP_ENSEMBLES": str(folder), **env}
    return subprocess.run([sys.executable, "-m", "fusion_mcp", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def _without_local_runtime(tmp_path: Path) -> dict[str, str]:
    """An environment where `import xllamacpp` finds nothing, as on a machine without the extra:
    a sitecustomize that hides the package from the import system."""
    site = tmp_path / "hide"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['xllamacpp'] = None\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def test_without_the_local_runtime_local_is_not_ready_and_not_the_default(tmp_path: Path, ensemble_dir: Path) -> None:
    env = _without_local_runtime(tmp_path)
    data = json.loads(_run(["ensembles", "--json"], ensemble_dir, **env).stdout)
    local = {e["name"]: e for e in data["ensembles"]}["local"]
    assert local["ready"] is False and local["default"] is False
    assert local["missing_local"] == ["the local model runtime xllamacpp is not installed: "
                                      "pip install xllamacpp (in a clone: make install-local)"]
    # Nothing else is ready either (no key): no default, and the reason says what to do.
    assert data["default"] is None and "no ensemble is ready" in data["default_reason"]
    assert "pip install xllamacpp" in data["default_reason"]
    # `ask` stops before any model call: one line for the one cause (not one per draft), exit 2.
    out = _run(["ask", "What is 2+2?"], ensemble_dir, **env)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no ensemble is ready"), out.stderr
    out = _run(["ask", "What is 2+2?", "-e", "local"], ensemble_dir, **env)
    assert out.returncode == 2
    assert out.stderr.count("xllamacpp is not installed") == 1 and len(out.stderr.strip().splitlines()) == 1


def test_with_a_key_the_default_falls_to_the_next_ready_ensemble(tmp_path: Path, ensemble_dir: Path) -> None:
    env = {**_without_local_runtime(tmp_path), "OPENROUTER_API_KEY": "sk-or-v1-test"}
    data = json.loads(_run(["ensembles", "--json"], ensemble_dir, **env).stdout)
    assert data["default"] == "budget-trio"


def test_the_default_skips_an_ensemble_that_cannot_run(ensemble_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    (ensemble_dir / "mine.toml").write_text('[providers.x]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
                                            '[[drafters]]\nmodel = "x:m1"\n')
    registry = EnsembleRegistry.load([ensemble_dir])
    assert registry.default() == ("mine", "the first ensemble that is ready")
    (ensemble_dir / "mine.toml").unlink()
    with pytest.raises(NoReadyEnsembleError, match="local: the local model runtime xllamacpp"):
        EnsembleRegistry.load([ensemble_dir]).default()


def test_all_drafts_failing_for_one_reason_is_one_line(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("alpha", status=404)
    upstream.script("beta", status=404)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "alpha", "alpha"]))
    out = _run(["ask", "Q?", "-e", "lab"], ensemble_dir)
    assert out.returncode == 1
    assert out.stderr.count("unknown_model: HTTP 404") == 1, out.stderr
    assert "draft A (lab:alpha), draft B (lab:alpha), draft C (lab:alpha): unknown_model" in out.stderr


def test_a_blank_question_is_refused(ensemble_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "   ", "--ensembles", str(ensemble_dir)]) == 2
    assert "the question is empty" in capsys.readouterr().err


def test_a_misspelt_ensemble_gets_a_suggestion(ensemble_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "Q?", "-e", "budget-tiro", "--ensembles", str(ensemble_dir)]) == 2
    assert "did you mean 'budget-trio'?" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["ask", "ensembles", "eval", "serve", None])
def test_help_has_examples(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"] if command else ["--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"fusion-mcp {command or 'ask'}" in text
    assert "engine" not in text.lower() and "thin layer" not in text  # no wording from inside the project


def _long_lab(ensemble_dir: Path, url: str) -> None:
    (ensemble_dir / "lab.toml").write_text(lab_toml(url, [LONG, "beta"]))


def _fits(text: str, width: int = 80) -> None:
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert "…" not in text, text  # folded, never cut


def test_ensembles_fits_80_columns_without_cutting_model_names(ensemble_dir: Path) -> None:
    (ensemble_dir / "lab.toml").write_text(lab_toml("http://127.0.0.1:1/v1", [LONG, "beta"]))
    out = _run(["ensembles"], ensemble_dir, COLUMNS="80")
    _fits(out.stdout)
    joined = "".join(out.stdout.split())
    assert f"lab:{LONG}" in joined  # the whole name is there, wrapped across lines
    assert "budget-trio" in out.stdout and "openrouter:moonshotai/kimi-k2.6" in out.stdout
    assert "budget-trio needs: set OPENROUTER_API_KEY" in out.stdout


def test_ask_fits_80_columns_and_show_drafts_gives_the_reviewers_reasons(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script(LONG, text="four")
    upstream.script("beta", text="4")
    upstream.script("judge", text=review_json({"A": (9, 8, 7), "B": (5, 5, 5)}))
    upstream.script("fuser", text="4.")
    _long_lab(ensemble_dir, upstream.url)
    out = _run(["ask", "2+2?", "-e", "lab", "--show-drafts"], ensemble_dir, COLUMNS="80")
    assert out.returncode == 0, out.stderr
    _fits(out.stdout)
    assert f"lab:{LONG}" in "".join(out.stdout.split()) and "9/8/7" in out.stdout
    assert "reviewer (9/8/7): reason A" in out.stdout and "reviewer (5/5/5): reason B" in out.stdout


def test_a_rich_console_of_80_columns_gets_the_narrow_layout(ensemble_dir: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import fusion_mcp.cli.main as cli_main

    narrow = Console(width=80, force_terminal=False, color_system=None)
    monkeypatch.setattr(cli_main, "consoles", lambda: (narrow, Console(stderr=True, width=80)))
    with narrow.capture() as cap:
        assert main(["ensembles", "--ensembles", str(ensemble_dir)]) == 0
    _fits(cap.get())
    assert "cost/call" in cap.get() and "deadline" not in cap.get()


def test_the_server_says_what_the_local_ensemble_lacks(monkeypatch: pytest.MonkeyPatch, ensemble_dir: Path) -> None:
    import anyio
    from mcp import Client

    from fusion_mcp.server.app import create_server

    monkeypatch.setitem(sys.modules, "xllamacpp", None)

    async def scenario() -> tuple[Any, Any]:
        async with Client(create_server(EnsembleRegistry.load([ensemble_dir]))) as client:
            listing = (await client.call_tool("list_ensembles", {})).structured_content
            failed = await client.call_tool("fused_answer", {"question": "2+2?", "ensemble": "local"})
        return listing, failed

    listing, failed = anyio.run(scenario)
    local = {e["name"]: e for e in listing["ensembles"]}["local"]
    assert local["ready"] is False and "pip install xllamacpp" in local["missing_local"][0]
    assert listing["default"] is None
    assert failed.is_error
    text = failed.content[0].text
    assert text.count("xllamacpp is not installed") == 1 and "list_ensembles" in text


def test_no_instruction_installs_the_unrelated_pypi_project() -> None:
    """`fusion-mcp` on PyPI is another project: the distribution here is fusion-mcp-server, and no
    doc, error or build file tells anyone to install `fusion-mcp` by name."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "fusion-mcp-server" and project["scripts"] == {"fusion-mcp": "fusion_mcp.cli.main:main"}
    wrong = re.compile(r"""(pip|pipx|uv tool|uv pip) install\s+(-U\s+)?["']?fusion-mcp(?!-server)\b|fusion-mcp\[""")
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml", *ROOT.glob("docs/*.md"),
             *ROOT.glob("fusion_mcp/**/*.py"), *ROOT.glob("fusion_mcp/**/*.txt")]
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in wrong.finditer(p.read_text())]
    assert hits == []
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e ." in readme and "pipx install ." in readme and "uv tool install ." in readme
