"""What a second look at the merged code found: keys in web citations and store URLs, commands that
crashed or cost a run before failing, and model ids a terminal table turned into emoji."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusion_mcp.cli.main import main
from tests.conftest import LAB_KEY, lab_toml
from tests.upstream import Upstream


def _run(args: list[str], folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "FUSION_MCP_ENSEMBLES": str(folder), **env}
    return subprocess.run([sys.executable, "-m", "fusion_mcp", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def test_a_key_an_upstream_echoes_in_a_web_citation_never_reaches_the_result(upstream: Upstream, ensemble_dir: Path):
    upstream.script("searcher", text="Paris [1].", annotations=[
        {"type": "url_citation", "url_citation": {"url": f"https://echo.example/?k={LAB_KEY}", "title": f"key {LAB_KEY}"}}])
    upstream.script("beta", text="Paris.")
    upstream.script("fuser", text="Paris, cited.")
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, [{"model": "searcher", "web": True}, "beta"],
                                                    reviewer=None, provider_extra="max_retries = 0\nweb_plugin = true"))
    out = _run(["ask", "Capital of France?", "-e", "lab", "--json"], ensemble_dir)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    cited = next(d for d in result["drafts"] if d["model"] == "lab:searcher")["citations"]
    assert cited and cited[0]["url"].startswith("https://echo.example/?k=")  # the citation is kept...
    assert LAB_KEY not in out.stdout and LAB_KEY[:12] not in out.stdout  # ...without the key


def test_a_mistyped_store_url_never_echoes_its_password(ensemble_dir: Path):
    out = _run(["serve", "--transport", "streamable-http", "--port", "1"], ensemble_dir,
               FUSION_MCP_STORE="rediss//:S3cretRedisPass@cache.internal:6379")
    assert out.returncode == 2 and "is not a store this server knows" in out.stderr
    assert "S3cretRedisPass" not in out.stderr + out.stdout and "Traceback" not in out.stderr


def test_models_with_an_unreachable_provider_says_so_without_a_traceback(ensemble_dir: Path):
    (ensemble_dir / "lab.toml").write_text(lab_toml("http://127.0.0.1:9", ["alpha"]))  # nothing listens on 9
    out = _run(["models", "--provider", "lab"], ensemble_dir)
    assert "Traceback" not in out.stderr
    assert "cannot reach lab" in out.stderr  # which provider, in one line


def test_an_unknown_default_ensemble_names_the_variable(ensemble_dir: Path):
    out = _run(["ask", "Q?"], ensemble_dir, FUSION_MCP_DEFAULT_ENSEMBLE="budget-tiro")
    assert out.returncode == 2
    assert "unknown ensemble 'budget-tiro' (set by FUSION_MCP_DEFAULT_ENSEMBLE); did you mean 'budget-trio'?" in out.stderr


def test_eval_refuses_an_unusable_out_folder_before_any_call(upstream: Upstream, ensemble_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "lab", "--out", str(blocker)])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {blocker}: cannot make the report folder" in err
    assert upstream.calls() == []


@pytest.mark.parametrize("amount", ["-1", "0", "inf"])
def test_a_spending_cap_must_be_a_positive_amount(amount: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "-d", "x.jsonl", "--max-cost-usd", amount])
    assert exit_.value.code == 2 and "must be a number of dollars above 0" in capsys.readouterr().err


def test_model_ids_in_tables_stay_literal(ensemble_dir: Path):
    (ensemble_dir / "odd.toml").write_text(lab_toml("http://127.0.0.1:9", ["smile:face"]))  # `:face` after `smile`
    out = _run(["ensembles"], ensemble_dir, COLUMNS="200")
    assert out.returncode == 0, out.stderr
    assert "lab:smile:face" in out.stdout  # not an emoji, not a style
