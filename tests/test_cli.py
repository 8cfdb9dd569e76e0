"""`fusion-mcp ask` and `fusion-mcp ensembles`, run as a user runs them, and the keys they never show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusion_mcp.cli.main import main
from tests.conftest import LAB_KEY, lab_toml, review_json
from tests.upstream import Upstream


def _run(args: list[str], folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FUSION_MCP_ENSEMBLES": str(folder), **env}
    return subprocess.run([sys.executable, "-m", "fusion_mcp", *args], capture_output=True, text=True,
                          env=full_env, timeout=60)


def _lab(upstream: Upstream, folder: Path, drafters: list[str] | None = None) -> None:
    (folder / "lab.toml").write_text(lab_toml(upstream.url, drafters or ["alpha", "beta"]))


def test_ask_prints_the_answer_and_provenance(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("alpha", text="Paris is the capital of France.")
    upstream.script("beta", text="Lyon.", status=500)
    upstream.script("judge", text=review_json({"A": (9, 9, 9)}))
    upstream.script("fuser", text="Paris.")
    _lab(upstream, ensemble_dir)
    out = _run(["ask", "Capital of France?", "--ensemble", "lab"], ensemble_dir)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Paris is the capital of France."  # one ok draft: it is the answer
    assert "ensemble lab" in out.stdout and "(degraded)" in out.stdout
    assert "lab:alpha" in out.stdout and "lab:beta" in out.stdout and "upstream_error: HTTP 500" in out.stdout
    assert "cost unknown" in out.stdout  # never shown as $0
    assert "degraded: draft" in out.stdout


def test_ask_json_has_the_whole_result_with_draft_texts_unless_left_out(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("alpha", text="one")
    upstream.script("beta", text="two")
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (5, 5, 5)}))
    upstream.script("fuser", text="fused", cost=0.5)
    _lab(upstream, ensemble_dir)
    plain = json.loads(_run(["ask", "Q?", "-e", "lab", "--json", "--no-draft-text"], ensemble_dir).stdout)
    assert plain["answer"] == "fused" and plain["ensemble"] == "lab"
    assert [d["text"] for d in plain["drafts"]] == [None, None]
    assert {d["status"] for d in plain["drafts"]} == {"ok"}
    assert plain["totals"]["cost_usd"] == 0.5 and plain["totals"]["cost_complete"] is False
    full = json.loads(_run(["ask", "Q?", "-e", "lab", "--json"], ensemble_dir).stdout)
    assert sorted(d["text"] for d in full["drafts"]) == ["one", "two"]
    assert sorted(d["scores"]["reason"] for d in full["drafts"]) == ["reason A", "reason B"]


def test_ask_with_every_draft_failing_exits_1_with_each_reason(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("alpha", status=404)
    upstream.script("beta", status=429)
    _lab(upstream, ensemble_dir)
    out = _run(["ask", "Q?", "-e", "lab"], ensemble_dir)
    assert out.returncode == 1
    assert "no draft from ensemble 'lab'" in out.stderr
    assert "(lab:alpha): unknown_model: HTTP 404" in out.stderr and "(lab:beta): rate_limited: HTTP 429" in out.stderr


def test_ask_unknown_ensemble_and_missing_key_say_what_to_do(upstream: Upstream, ensemble_dir: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _lab(upstream, ensemble_dir)
    assert main(["ask", "Q?", "-e", "nope", "--ensembles", str(ensemble_dir)]) == 2
    err = capsys.readouterr().err
    assert "unknown ensemble 'nope'" in err and "lab" in err and "frontier-duo" in err
    monkeypatch.delenv("LAB_KEY")
    assert main(["ask", "Q?", "-e", "lab", "--ensembles", str(ensemble_dir)]) == 2
    assert "set LAB_KEY" in capsys.readouterr().err
    assert upstream.calls() == []


def test_ensembles_lists_models_readiness_default_and_broken_files(ensemble_dir: Path) -> None:
    (ensemble_dir / "mine.toml").write_text(
        '[providers.x]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "X_KEY"\n'
        '[[drafters]]\nmodel = "x:m1"\n'
    )
    (ensemble_dir / "bad.toml").write_text('[[drafters]]\nmodle = "x"\n')
    out = _run(["ensembles", "--json"], ensemble_dir, OPENROUTER_API_KEY="")
    data = json.loads(out.stdout)
    names = {e["name"]: e for e in data["ensembles"]}
    assert names["mine"]["missing_keys"] == ["X_KEY"] and names["mine"]["ready"] is False
    assert names["frontier-duo"]["missing_keys"] == ["OPENROUTER_API_KEY"]
    assert names["local"]["ready"] is True
    assert data["default"] == "local"
    assert "bad.toml [drafters[0].modle]: unknown key (did you mean 'model'?)" in data["broken_files"]["bad"]
    assert names["local"]["estimated_cost_usd"] == 0 and names["mine"]["estimated_cost_usd"] is None
    text = _run(["ensembles"], ensemble_dir).stdout
    assert "no: set X_KEY" in text and "default: local" in text and "error:" in text


def test_no_key_appears_in_any_output(upstream: Upstream, ensemble_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upstream that quotes the caller's credentials back in its errors must not leak them."""
    or_key = "sk-or-v1-secret-0123456789"
    upstream.script("alpha", status=401, echo_auth=True)
    upstream.script("beta", status=500, echo_auth=True)
    _lab(upstream, ensemble_dir)
    env = {"OPENROUTER_API_KEY": or_key}
    outputs = [
        _run(["ask", "Q?", "-e", "lab"], ensemble_dir, **env),
        _run(["ask", "Q?", "-e", "lab", "--json", "--show-drafts"], ensemble_dir, **env),
        _run(["ensembles"], ensemble_dir, **env),
        _run(["ensembles", "--json"], ensemble_dir, **env),
    ]
    assert "for credentials" in outputs[0].stderr  # the upstream did echo them...
    assert "[redacted]" in outputs[0].stderr       # ...and they were scrubbed
    upstream.script("alpha", text="fine")
    upstream.script("judge", text="{}")
    upstream.script("fuser", text="fused")
    outputs.append(_run(["ask", "Q?", "-e", "lab", "--json", "--show-drafts"], ensemble_dir, **env))
    assert json.loads(outputs[-1].stdout)["answer"] == "fine"
    for out in outputs:
        for secret in (LAB_KEY, or_key):
            assert secret not in out.stdout and secret not in out.stderr


def test_a_broken_price_file_is_a_configuration_error_before_any_call(upstream: Upstream, ensemble_dir: Path,
                                                                      tmp_path: Path) -> None:
    _lab(upstream, ensemble_dir)
    out = _run(["ask", "Q?", "-e", "lab"], ensemble_dir, FUSION_MCP_PRICES=str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert "missing.toml: cannot read price table" in out.stderr and "Traceback" not in out.stderr
    assert upstream.calls() == []


@pytest.mark.parametrize("command", [[], ["ask"], ["ensembles"], ["models"], ["serve"], ["eval"], ["tune"]])
def test_help_fits_an_80_column_terminal(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = capsys.readouterr().out
    assert max(len(line) for line in shown.splitlines()) <= 80 and "usage: fusion-mcp" in shown


def test_models_offline_says_so_and_lists_the_local_model(ensemble_dir: Path, tmp_path: Path) -> None:
    """Every listing unreachable (a proxy that refuses, ollama not running), none cached."""
    dead = "http://127.0.0.1:9"
    out = _run(["models"], ensemble_dir, FUSION_MCP_MODELS_CACHE=str(tmp_path / "listings"), COLUMNS="100",
               HTTPS_PROXY=dead, HTTP_PROXY=dead, https_proxy=dead, http_proxy=dead, NO_PROXY="", no_proxy="")
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("offline: no provider's model listing could be reached (")
    assert "showing the embedded model that runs here" in out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows[0] == ["model", "context", "$/M", "in", "$/M", "out"] and rows[1] == ["local:smollm2", "-", "0", "0"]


def test_ensembles_without_a_usable_default_says_why_and_never_none(ensemble_dir: Path) -> None:
    out = _run(["ensembles"], ensemble_dir, FUSION_MCP_DEFAULT_ENSEMBLE="nope", COLUMNS="100")
    assert out.returncode == 0, out.stderr
    assert "None" not in out.stdout
    assert "no default: unknown ensemble 'nope' (set by FUSION_MCP_DEFAULT_ENSEMBLE)" in out.stdout
