"""A key written other than as itself (JSON escapes, URL-encoded, base64, split into groups), or
served as a model id, reaches no output: not the answer, the comparison, the run, `ask`, the
listing cache, tune's files, nor the prompt sent to another provider."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from mcp import Client

from fusion_mcp.cli.main import main
from fusion_mcp.redaction import PIECE_LEN, redact
from fusion_mcp.server.app import create_server
from tests.conftest import LAB_KEY, lab_toml, write_registry
from tests.upstream import Upstream

LONG_KEY = "sk-or-v1-0f9e8d7c6b5a49382716aa55bb44cc33dd22ee11"


def leaks(text: str, key: str = LAB_KEY) -> list[str]:
    """Every piece of the key, PIECE_LEN characters or longer, in the text as it is or decoded."""
    decoded = [text, urllib.parse.unquote(text)]
    try:
        decoded.append(json.loads(f'"{text}"'))
    except ValueError:
        pass
    return [key[i:i + PIECE_LEN] for i in range(len(key) - PIECE_LEN + 1)
            for t in decoded if key[i:i + PIECE_LEN] in t]


def escaped(key: str, every: int = 2) -> str:
    """The key with every `every`-th character written as a JSON \\u escape."""
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(key))


def b64_inside(prefix: bytes, key: str, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(prefix + key.encode() + b" trailing bytes").decode()


@pytest.mark.parametrize("write", [
    lambda k: escaped(k), lambda k: escaped(k, 1), lambda k: escaped(k, 5),
    lambda k: "".join(f"%{b:02X}" for b in k.encode()),
    lambda k: "".join(f"&#{ord(c)};" for c in k),
    lambda k: "".join(f"%5Cu{ord(c):04x}" for c in k),  # an escape escaped once more
    lambda k: k.replace("/", "\\/"),
    lambda k: " ".join(k[i:i + 8] for i in range(0, len(k), 8)),
    lambda k: " + ".join(f'"{k[i:i + 8]}"' for i in range(0, len(k), 8)),
    lambda k: b64_inside(b"", k), lambda k: b64_inside(b"x", k), lambda k: b64_inside(b"xy", k, urlsafe=True),
], ids=["json-half", "json-all", "json-fifth", "url", "html", "double", "slash", "groups", "concat",
        "b64-0", "b64-1", "b64-2"])
def test_every_common_encoding_of_a_key_is_redacted(monkeypatch: pytest.MonkeyPatch, write) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", LONG_KEY)
    text = f"before {write(LONG_KEY)} after"
    out = redact(text)
    assert "[redacted]" in out and out.startswith("before ")
    assert leaks(out, LONG_KEY) == [], out
    if "b64" not in text:
        assert out.endswith(" after")
    for b64 in (t for t in out.split() if len(t) > 16):  # what is left of a base64 text decodes to no piece
        padded = b64.replace("[redacted]", "")
        assert leaks(base64.b64decode(padded + "=" * (-len(padded) % 4), altchars=b"-_", validate=False)
                     .decode("latin-1"), LONG_KEY) == []


def test_ordinary_text_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", LONG_KEY)
    for text in ("100% sure; \\u0041 and %41 and &#65; stay", "sk-or-v1 is a prefix, 0f9e8d7c alone is short",
                 json.dumps({"a": "\u00e9t\u00e9", "b": "x/y"})):
        assert redact(text) == text


REVIEW = '{{"scores": {{"A": {{"score": 8, "reason": "it said {k}"}}, "B": {{"score": 7, "reason": "ok"}}}}, ' \
         '"consensus": ["the key {k}"], "contradictions": [{{"topic": "key {k}", "stances": ' \
         '[{{"label": "A", "stance": "{k}"}}, {{"label": "B", "stance": "no"}}]}}], ' \
         '"unique_insights": [{{"label": "A", "insight": "{k}"}}], "blind_spots": ["{k}"]}}'


def _script(upstream: Upstream) -> None:
    upstream.script("alpha", text="Paris.")
    upstream.script("beta", text="Paris, France.")
    upstream.script("judge", text=REVIEW.format(k=escaped(LAB_KEY)))
    upstream.script("fuser", text="Paris is the capital.")


def _synthesis_prompt_is_clean(upstream: Upstream) -> None:
    prompts = [r.all_text() for r in upstream.calls("fuser")]
    assert prompts and all(leaks(p) == [] for p in prompts)
    assert any("[redacted]" in p for p in prompts)  # the analysis reached the synthesis, redacted


@pytest.mark.anyio
async def test_a_key_a_reviewer_writes_as_escapes_reaches_no_tool_result(upstream: Upstream, ensemble_dir: Path):
    _script(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        answer = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab",
                                                         "include_drafts": True})
        assert not answer.is_error, answer.content
        run_id = answer.structured_content["run_id"]
        compared = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})
        assert not compared.is_error, compared.content
        got = await client.call_tool("get_run", {"run_id": run_id})
        run = await client.read_resource(f"run://{run_id}")
    shown = [json.dumps(r.structured_content) + "".join(c.text for c in r.content if hasattr(c, "text"))
             for r in (answer, compared, got)] + [run.contents[0].text]
    for text in shown:
        assert leaks(text) == [], text[:400]
    assert "[redacted]" in shown[1]  # the comparison's reasons and analysis held it
    _synthesis_prompt_is_clean(upstream)


def test_a_key_a_reviewer_writes_as_escapes_reaches_no_ask_output(upstream: Upstream, ensemble_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _script(upstream)
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    for extra in (["--json"], ["--show-drafts"], ["--json", "--show-drafts"]):
        code = main(["ask", "Capital?", "-e", "lab", "--ensemble-dir", str(ensemble_dir), *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert leaks(out + err) == [], out
    _synthesis_prompt_is_clean(upstream)


LISTING = [{"id": "alpha"}, {"id": LAB_KEY}, {"id": f"vendor/{LAB_KEY}-free"}, {"id": "beta"}]


@pytest.mark.anyio
async def test_a_key_served_as_a_model_id_is_listed_nowhere(upstream: Upstream, ensemble_dir: Path, tmp_path: Path):
    upstream.models = LISTING
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        listed = await client.call_tool("list_models", {"provider": "lab"})
        again = await client.call_tool("list_models", {"provider": "lab"})  # from the cache on disk
    assert [m["model"] for m in listed.structured_content["models"]] == ["lab:alpha", "lab:beta"]
    assert again.structured_content["providers"][0]["source"] == "cache"
    for result in (listed, again):
        assert leaks(json.dumps(result.structured_content) + result.content[0].text) == []
    for path in (tmp_path / "models").iterdir():
        assert leaks(path.read_text()) == [], path


def test_a_key_served_as_a_model_id_reaches_neither_models_nor_tune(upstream: Upstream, ensemble_dir: Path,
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    upstream.models = LISTING
    for m in ("alpha", "beta"):
        upstream.script(m, text="Answer: 3")
    upstream.script("judge", text='{"A": {"score": 8}, "B": {"score": 8}}')
    upstream.script("fuser", text="Answer: 3")
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["alpha"]))
    code = main(["models", "--provider", "lab", "--refresh", "--ensembles", str(ensemble_dir)])
    out, err = capsys.readouterr()
    assert code == 0 and "lab:alpha" in out and leaks(out + err) == []
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "q1", "question": "What is 1 plus 2?", "answer": "3"}) + "\n")
    out_dir = tmp_path / "tune"
    code = main(["tune", "--ensemble-dir", str(ensemble_dir), "-d", str(data), "--candidates-from", "lab",
                 "--reviewers", "lab:judge", "--synthesizers", "lab:fuser", "--panel-size", "2", "--confirm", "0",
                 "--out", str(out_dir), "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert leaks(out + err) == []
    for path in out_dir.iterdir():
        assert leaks(path.read_text(errors="replace")) == [], path
    assert {r.model for r in upstream.calls()} <= {"alpha", "beta", "judge", "fuser"}
