"""A key an upstream echoes, whole, cut or in pieces, never reaches a user, a file or a cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from fusion_mcp import FusionEngine, NoDraftsError
from fusion_mcp.cli.main import main
from fusion_mcp.redaction import PIECE_LEN, redact
from fusion_mcp.server.app import create_server
from tests.conftest import LAB_KEY, lab_toml, write_registry
from tests.upstream import Upstream

LONG_KEY = "sk-or-v1-0f9e8d7c6b5a49382716aa55bb44cc33dd22ee11"


def leaks(text: str, key: str = LAB_KEY) -> list[str]:
    """Every piece of the key, PIECE_LEN characters or longer, found in the text."""
    return [key[i:i + PIECE_LEN] for i in range(len(key) - PIECE_LEN + 1) if key[i:i + PIECE_LEN] in text]


def test_whole_keys_and_every_long_piece_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", LONG_KEY)
    for i in range(len(LONG_KEY) - PIECE_LEN + 1):
        for j in range(i + PIECE_LEN, len(LONG_KEY) + 1):
            text = f"quoted «{LONG_KEY[i:j]}» here"
            assert leaks(redact(text), LONG_KEY) == [], (i, j)
            assert redact(text).startswith("quoted «[redacted]")
    assert redact(f"a {LAB_KEY} b {LONG_KEY[:20]}-{LONG_KEY[25:]}") == "a [redacted] b [redacted]-[redacted]"
    short = LONG_KEY[3:3 + PIECE_LEN - 1]  # shorter than a piece: ordinary text may hold it
    assert redact(f"x {short} y") == f"x {short} y"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_key_straddling_the_cut_of_an_error_does_not_survive(upstream: Upstream, ensemble_dir: Path) -> None:
    """The error text is cut at 300 characters; redacting after the cut let 28 characters through."""

    async def run(message: str) -> str:
        upstream.script("alpha", status=500, error_message=message)
        reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha"], None, None))
        async with FusionEngine(reg) as engine:
            with pytest.raises(NoDraftsError) as caught:
                await engine.fuse("Q?", ensemble="lab")
        return str(caught.value)

    import anyio

    for pad in range(280, 300, 3):
        text = anyio.run(run, "x" * pad + LAB_KEY + " and more")
        assert leaks(text) == [], (pad, text)
    text = anyio.run(run, "not json at all " * 3 + LAB_KEY)  # not JSON either way: same rule
    assert leaks(text) == []


def _script_echo(upstream: Upstream) -> None:
    upstream.script("alpha", text=f"Paris. (my key is {LAB_KEY})")
    upstream.script("beta", text=f"Paris; key piece {LAB_KEY[2:17]} done")
    upstream.script("judge", text=f'{{"A": {{"score": 8, "reason": "saw {LAB_KEY}"}}, "B": {{"score": 7}}}}')
    upstream.script("fuser", text=f"Paris. {LAB_KEY}")


def test_ask_never_prints_an_echoed_key(upstream: Upstream, ensemble_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _script_echo(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    for extra in ([], ["--json", "--show-drafts"], ["--show-drafts"]):
        code = main(["ask", "Capital?", "-e", "lab", "--ensemble-dir", str(ensemble_dir), *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "Paris" in out and "[redacted]" in out
        assert leaks(out + err) == []


@pytest.mark.anyio
async def test_tool_results_and_runs_never_carry_an_echoed_key(upstream: Upstream, ensemble_dir: Path) -> None:
    _script_echo(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        result = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab",
                                                         "include_drafts": True})
        assert not result.is_error
        run = await client.read_resource(f"run://{result.structured_content['run_id']}")
    shown = json.dumps(result.structured_content) + result.content[0].text + run.contents[0].text
    assert "[redacted]" in shown and leaks(shown) == []


def test_eval_files_and_the_call_cache_never_hold_an_echoed_key(upstream: Upstream, ensemble_dir: Path,
                                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _script_echo(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
    cache = tmp_path / "calls.sqlite3"
    code = main(["eval", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "-e", "lab",
                 "--out", str(tmp_path / "o"), "--cache", str(cache)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert leaks(out + err) == []
    files = [*(tmp_path / "o").iterdir(), *tmp_path.glob("calls.sqlite3*")]
    assert cache.exists() and (tmp_path / "o" / "items.jsonl").exists()
    for path in files:
        assert leaks(path.read_bytes().decode("utf-8", "replace")) == [], path
