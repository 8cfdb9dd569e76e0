"""One bad ensemble file is a named broken file; every other file loads and every command runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from fusion_mcp.cli.main import main
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from tests.conftest import LAB_KEY, lab_toml
from tests.upstream import Upstream

BAD_FILES = {
    "latin1": "description = \"caf\xe9\"\n".encode("latin-1"),
    "deep": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deeptable": b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n",
    "nul": b"\x00\xff\xfe",
}


@pytest.fixture
def folder(upstream: Upstream, ensemble_dir: Path) -> Path:
    upstream.script("alpha", text="Paris.")
    upstream.script("beta", text="Paris!")
    upstream.script("fuser", text="Paris, the capital.")
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], reviewer=None))
    for name, data in BAD_FILES.items():
        (ensemble_dir / f"{name}.toml").write_bytes(data)
    return ensemble_dir


def test_the_registry_names_each_broken_file_and_loads_the_rest(folder: Path) -> None:
    registry = EnsembleRegistry.load([folder])
    assert "lab" in registry.ensembles
    assert set(BAD_FILES) <= set(registry.errors)
    assert "not UTF-8" in str(registry.errors["latin1"]) and "0xe9" in str(registry.errors["latin1"])
    assert str(folder / "deep.toml") in str(registry.errors["deep"])
    assert str(folder / "deeptable.toml") in str(registry.errors["deeptable"])


def test_ensembles_and_ask_and_eval_run_past_a_broken_file(folder: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    dirs = ["--ensemble-dir", str(folder)]
    assert main(["ensembles", *dirs]) == 0
    out, err = capsys.readouterr()
    assert "lab" in out and "latin1.toml" in out and "deep.toml" in out and "Traceback" not in out + err
    assert main(["ask", "Capital?", "-e", "lab", *dirs]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Paris, the capital.") and "Traceback" not in err
    assert main(["ask", "Capital?", "-e", "deep", *dirs]) == 2
    assert "deep.toml" in capsys.readouterr().err
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
    assert main(["eval", *dirs, "-d", str(data), "-e", "lab", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "results.json").is_file()


@pytest.mark.anyio
async def test_serve_runs_past_a_broken_file(folder: Path, tmp_path: Path) -> None:
    env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_CACHE": str(tmp_path / "c.sqlite3")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "fusion_mcp", "serve"], env=env)
    async with Client(params) as client:
        listed = await client.call_tool("list_ensembles", {})
        result = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
    assert "lab" in {e["name"] for e in listed.structured_content["ensembles"]}
    assert set(BAD_FILES) <= set(listed.structured_content["broken_files"])
    assert result.structured_content["answer"] == "Paris, the capital."
