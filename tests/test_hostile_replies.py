"""A hostile or broken model reply costs one stage, never the run: the review parser raises only its
own error, and `ask`, `fused_answer` and `eval` all carry on around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from fusion_mcp.cli.main import main
from fusion_mcp.fusion.review_parser import ReviewParseError, parse_review
from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, write_registry
from tests.upstream import Upstream

BRACKETS = "[" * 3000


@pytest.mark.parametrize("reply", [BRACKETS, '{"a":' * 3000, "[1," * 5000, "{" * 100_000, "[" * 100_000 + "]"])
def test_deep_nesting_is_a_parse_error(reply: str) -> None:
    with pytest.raises(ReviewParseError):
        parse_review(reply, ["A", "B"])


def _script(upstream: Upstream) -> None:
    upstream.script("alpha", text="Paris is the capital.")
    upstream.script("beta", text="Paris, on the Seine.")
    upstream.script("judge", text=BRACKETS)
    upstream.script("fuser", text="Paris.")


def test_ask_answers_around_a_hostile_review(upstream: Upstream, ensemble_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _script(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    code = main(["ask", "Capital of France?", "-e", "lab", "--ensemble-dir", str(ensemble_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == "Paris."
    assert "review: unparseable (lab:judge" in out
    assert "Traceback" not in out + err


@pytest.mark.anyio
async def test_fused_answer_answers_around_a_hostile_review(upstream: Upstream, ensemble_dir: Path) -> None:
    _script(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        result = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"})
    assert not result.is_error, result.content
    assert result.structured_content["answer"] == "Paris."
    assert any("lab:judge" in r and "unparseable" in r for r in result.structured_content["degraded_reasons"])


def test_eval_reports_around_a_hostile_review(upstream: Upstream, ensemble_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _script(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
    code = main(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "lab", "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "o" / "results.json").is_file()
    assert "Traceback" not in err
