"""Answer integrity: no internal markup leaves a run, the guard keeps the panel's agreed answer,
cascades escalate only on disagreement, claims carry their drafts, and criteria and prompt overrides
reach the models. The run's logic goes through the test provider (`lab`: no sockets); a streamed
synthesis, the command line and the MCP tools run over the loopback upstream."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.errors import InputError
from fusion_mcp.fusion.markup import StreamScrubber
from fusion_mcp.fusion.test_provider import Asked, TestProvider
from fusion_mcp.server.schemas import fused_answer_of
from tests.conftest import analysis_review, lab_toml, offline_engine, write_registry
from tests.upstream import Behaviour, Upstream

_NONCE = re.compile(r"<(?:draft|analysis)-([0-9a-f]{12})")


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"])


def _nonces(upstream: Upstream) -> set[str]:
    return {n for c in upstream.calls() for n in _NONCE.findall(c.all_text())}


async def _run(lab: TestProvider, folder: Path, name: str = "lab", files: dict[str, str] | None = None):
    async with offline_engine(folder, lab, **(files or {"lab": lab_toml(None, ["a", "b", "c"])})) as engine:
        return await engine.fuse("What is six times seven?", ensemble=name)


# -- clean answers ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_echoing_synthesizer_leaks_no_marker(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("a", text="Six sevens are 42.")
    upstream.script("b", text="It is 42, since 6 x 7 = 42.")
    upstream.script("c", text="Forty-two.")
    upstream.script("judge", text=analysis_review({"A": 8, "B": 8, "C": 8}))
    # echoes its whole prompt, then a tag cut off mid-marker, streamed in small pieces
    upstream.script("fuser", Behaviour(text=lambda body: _prompt(body) + "\n<draft-" + _NONCE.findall(
        _prompt(body))[0][:10], output_tokens=600, tokens_per_s=20000))
    streamed: list[str] = []
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b", "c"]))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("What is six times seven?", ensemble="lab", on_text=streamed.append)
    nonces = _nonces(upstream)
    assert len(nonces) == 2  # the review's marker and the synthesis's
    assert result.answer_source == "synthesis" and result.answer
    assert "Six sevens are 42." in result.answer  # the echo itself stays: only the markup goes
    for where, text in (("answer", result.answer), ("stream", "".join(streamed)),
                        *(("draft", d.text or "") for d in result.drafts)):
        for nonce in nonces:
            assert nonce not in text and nonce[:8] not in text, (where, nonce)
        assert "<draft-" not in text and "</draft" not in text and "<analysis-" not in text
    assert len(streamed) > 20  # it really arrived in pieces, tags split across them


def test_a_stream_holds_back_a_marker_whose_last_character_begins_another() -> None:
    # "…26bd0d2c" may be the start of the first marker, and its "c" the start of the second: what is
    # held back starts at the earliest, so no piece of the first leaves before the next piece settles it.
    out: list[str] = []
    scrubber = StreamScrubber(out.append, ["c0ffee123456", "26bd0d2c23a7"])
    for piece in ("the marker 26bd0d2c", "23a7 delimits them", "."):
        scrubber.write(piece)
    scrubber.close()
    assert "".join(out) == "the marker  delimits them." and not any("26bd" in p for p in out)


@pytest.mark.anyio
async def test_a_synthesis_cut_at_the_deadline_leaks_no_marker(upstream: Upstream, ensemble_dir: Path) -> None:
    for m in ("a", "b"):
        upstream.script(m, text=f"Draft {m}: about 42.")
    upstream.script("fuser", Behaviour(text=_prompt, output_tokens=4000, tokens_per_s=400))
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b"], None, "fuser", deadline_s=3))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("What is six times seven?", ensemble="lab")
    assert result.synthesis.status == "truncated" and result.answer
    for nonce in _nonces(upstream):
        assert nonce[:6] not in result.answer
    assert "<draft-" not in result.answer and not re.search(r"</?d(r(a(f(t-?)?)?)?)?$", result.answer)


# -- the guard --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_guard_keeps_the_panels_unanimous_answer(lab: TestProvider, ensemble_dir: Path) -> None:
    for m, why in (("a", "6 x 7"), ("b", "7 + 7 + 7 + 7 + 7 + 7"), ("c", "six sevens")):
        lab.script(m, text=f"{why} makes it.\nFinal answer: 42")
    lab.script("fuser", text="Weighing the drafts, it is one less.\nFinal answer: 41")
    result = await _run(lab, ensemble_dir)
    assert result.answer is not None and result.answer.endswith("Final answer: 42")
    assert result.answer_source == "guard:majority_draft"
    assert result.guard is not None and result.guard.verdict == "replaced"
    assert result.guard.synthesis_text is not None and "Final answer: 41" in result.guard.synthesis_text
    assert result.guard.majority == 3 and result.guard.majority_answer == "42"
    assert any(r.startswith("guard:") and "'41'" in r for r in result.degraded_reasons)
    assert result.synthesis.status == "ok"  # the synthesis ran and is on record, it is just not the answer
    view = fused_answer_of(result, False)  # what an MCP host gets
    assert view.answer_source == "guard:majority_draft" and view.notes and "'41'" in view.notes[0]
    assert view.confidence is not None and view.confidence.level == "medium"  # unanimous drafts, lowered a step


@pytest.mark.anyio
async def test_a_review_that_scores_the_minority_accurate_lets_the_synthesis_stand(
        lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("a", text="Final answer: 42")
    lab.script("b", text="Final answer: 42")
    lab.script("c", text="Careful: the question says six times seven, plus one.\nFinal answer: 43")
    lab.script("judge", scores=lambda text: 10 if "43" in text else 3)
    lab.script("fuser", text="The plus one matters.\nFinal answer: 43")
    result = await _run(lab, ensemble_dir)
    assert result.answer_source == "synthesis" and result.answer.endswith("Final answer: 43")
    assert result.guard is not None and result.guard.verdict == "overruled"
    assert "more accurate" in result.guard.reason and "10/10" in result.guard.reason


@pytest.mark.anyio
async def test_the_guard_lets_an_agreeing_synthesis_through(lab: TestProvider, ensemble_dir: Path) -> None:
    for m in ("a", "b", "c"):
        lab.script(m, text="Final answer: 42")
    lab.script("fuser", text="Six sevens.\n**Final answer: 42.**")
    result = await _run(lab, ensemble_dir)
    assert result.answer_source == "synthesis" and result.guard is not None and result.guard.verdict == "agrees"
    assert not result.degraded


# -- cascades ---------------------------------------------------------------------------------


def _cascade_files(url: str | None = None) -> dict[str, str]:
    cheap = lab_toml(url, ["c1", "c2"], None, "cfuse").replace("deadline_s = 10\n", 'deadline_s = 10\nescalate_to = "big"\n')
    return {"cheap": cheap, "big": lab_toml(url, ["b1", "b2"], None, "bfuse")}


@pytest.mark.anyio
async def test_a_cascade_answers_itself_when_its_drafts_agree(lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("c1", text="Final answer: 42", cost_usd=0.001)
    lab.script("c2", text="So 42.\nFinal answer: 42", cost_usd=0.001)
    lab.script("cfuse", text="Final answer: 42", cost_usd=0.001)
    result = await _run(lab, ensemble_dir, "cheap", files=_cascade_files())
    assert result.answer == "Final answer: 42" and result.answer_source == "synthesis"
    assert result.escalation is None
    assert {d.model for d in result.drafts} == {"lab:c1", "lab:c2"}
    assert lab.calls_to("b1") == [] and lab.calls_to("b2") == [] and lab.calls_to("bfuse") == []


@pytest.mark.anyio
async def test_a_cascade_escalates_when_its_drafts_disagree(lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("c1", text="Final answer: 42", cost_usd=0.001)
    lab.script("c2", text="Final answer: 48", cost_usd=0.001)
    lab.script("b1", text="Final answer: 42", cost_usd=0.01, delay_s=0.5)
    lab.script("b2", text="6 x 7.\nFinal answer: 42", cost_usd=0.01, delay_s=0.5)
    lab.script("bfuse", text="It is 42.\nFinal answer: 42", cost_usd=0.01)
    result = await _run(lab, ensemble_dir, "cheap", files=_cascade_files())
    assert result.answer == "It is 42.\nFinal answer: 42" and result.answer_source == "synthesis"
    assert lab.calls_to("cfuse") == []  # the cheap synthesis never ran
    assert result.ensemble == "cheap" and result.escalation is not None
    assert result.escalation.to_ensemble == "big" and "differ" in result.escalation.reason
    assert any(n.startswith("escalated from cheap to big") for n in fused_answer_of(result, False).notes)
    assert {d.model for d in result.escalation.drafts} == {"lab:c1", "lab:c2"}
    assert {d.model for d in result.drafts} == {"lab:b1", "lab:b2"}
    assert result.totals.cost_usd == pytest.approx(0.002 + 0.03)  # both panels counted
    # the first panel's time stops where the second starts (its drafts take half a second each), and both count
    assert result.escalation.wall_s < min(d.latency_s for d in result.drafts)
    assert result.totals.wall_s >= result.escalation.wall_s + min(d.latency_s for d in result.drafts)
    assert any("escalated to big" in d for d in result.schedule.decisions)


def test_escalation_to_an_unknown_ensemble_or_a_cycle_is_refused_at_load(ensemble_dir: Path) -> None:
    base = lab_toml(None, ["a", "b"], None, "fuser")
    reg = write_registry(ensemble_dir, typo=f'escalate_to = "bigg"\n{base}',
                         one=f'escalate_to = "two"\n{base}', two=f'escalate_to = "one"\n{base}', fine=base)
    assert "fine" in reg.ensembles and not {"typo", "one", "two"} & set(reg.ensembles)
    typo = str(reg.errors["typo"])
    assert "typo.toml" in typo and "escalate_to" in typo and "'bigg'" in typo
    assert "cycle" in str(reg.errors["one"]) and "one.toml" in str(reg.errors["one"])


# -- claims, criteria, prompts ----------------------------------------------------------------


@pytest.mark.anyio
async def test_claims_carry_the_drafts_behind_them(lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("a", text="Six times seven is 42. It is the answer to everything.")
    lab.script("b", text="42, the product of 6 and 7.")
    lab.script("judge", text=analysis_review({"A": 8, "B": 8}))

    def fuser(asked: Asked) -> str:
        first = next(label for label, text in asked.drafts.items() if text.startswith("Six"))
        return f"Six times seven is 42 [A, B]. Some call it the answer to everything [{first}, Q]. Plain text."

    lab.script("fuser", text=fuser)
    async with offline_engine(ensemble_dir, lab, lab=lab_toml(None, ["a", "b"])) as engine:
        result = await engine.fuse("What is six times seven?", ensemble="lab")
    assert result.answer == "Six times seven is 42. Some call it the answer to everything. Plain text."
    assert [c.text for c in result.claims] == ["Six times seven is 42", "Some call it the answer to everything"]
    assert result.claims[0].labels == ["A", "B"] and set(result.claims[0].models) == {"lab:a", "lab:b"}
    assert result.claims[1].models == ["lab:a"] and "Q" not in result.claims[1].labels  # unknown: ignored
    assert all(result.answer[c.start:c.end] == c.text for c in result.claims)
    assert "[A, C]" in lab.calls_to("fuser")[0].system  # it was asked to mark them


@pytest.mark.anyio
async def test_criteria_reach_the_reviewer_and_synthesizer(lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("a", text="Mix them.")
    lab.script("b", text="Never mix bleach and ammonia.")
    lab.script("judge", text=json.dumps({**json.loads(analysis_review({"A": 5, "B": 9})),
                                         "risks": ["mixing bleach and ammonia releases toxic chloramine gas"]}))
    lab.script("fuser", text="Do not mix them.")
    text = lab_toml(None, ["a", "b"]).replace("deadline_s = 10\n", 'deadline_s = 10\ncriteria = "safety"\n')
    async with offline_engine(ensemble_dir, lab, lab=text) as engine:
        result = await engine.fuse("Can I mix bleach and ammonia?", ensemble="lab")
        review = lab.calls_to("judge")[0]
        assert "medical risks" in review.system and '"risks": [' in review.system
        assert result.analysis is not None and result.analysis.risks and result.criteria == "safety"
        assert "Risk: mixing bleach" in lab.calls_to("fuser")[0].user
        await engine.fuse("Sort a list?", ensemble="lab", criteria="Prefer the standard library.")
        assert "Prefer the standard library." in lab.calls_to("fuser")[-1].system
        with pytest.raises(InputError, match="criteria"):
            await engine.fuse("Sort a list?", ensemble="lab", criteria="  ")


def test_prompt_overrides_are_checked_at_load(ensemble_dir: Path) -> None:
    base = lab_toml(None, ["a", "b"])
    (ensemble_dir / "sys.txt").write_text("Answer like a pirate.")
    reg = write_registry(
        ensemble_dir,
        good=base + '\n[prompts]\ndraft_system = { file = "sys.txt" }\nsynthesis_user = "$question\\n$drafts"\n',
        badname=base + '\n[prompts]\ndraft_sistem = "x"\n',
        badvar=base + '\n[prompts]\nreview_user = "$question $drafts $secret"\n',
        dropped=base + '\n[prompts]\nsynthesis_user = "Just answer."\n',
        nofile=base + '\n[prompts]\ndraft_system = { file = "missing.txt" }\n',
    )
    assert reg.ensembles["good"].prompts["draft_system"] == "Answer like a pirate."
    assert "draft_system" in str(reg.errors["badname"]) and "prompts.draft_sistem" in str(reg.errors["badname"])
    assert "$secret" in str(reg.errors["badvar"])
    assert "$drafts" in str(reg.errors["dropped"]) and "$question" in str(reg.errors["dropped"])
    assert "missing.txt" in str(reg.errors["nofile"]) and "prompts.draft_system.file" in str(reg.errors["nofile"])


@pytest.mark.anyio
async def test_a_prompt_override_is_what_the_model_sees(lab: TestProvider, ensemble_dir: Path) -> None:
    text = lab_toml(None, ["a", "b"], None) + '\n[prompts]\ndraft_system = "Answer like a pirate."\n'
    async with offline_engine(ensemble_dir, lab, lab=text) as engine:
        await engine.fuse("Why is the sea salty?", ensemble="lab")
    assert lab.calls_to("a")[0].system == "Answer like a pirate."


def test_ask_show_drafts_shows_the_drafts_behind_each_claim(upstream: Upstream, ensemble_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from fusion_mcp.cli.main import main

    upstream.script("a", text="Six times seven is 42.")
    upstream.script("b", text="It is 42.")
    upstream.script("judge", text=analysis_review({"A": 8, "B": 8}))
    upstream.script("fuser", text="Six times seven is 42 [A, B]. It is even [B].")
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["a", "b"]))
    assert main(["ask", "What is six times seven?", "-e", "lab", "--ensembles", str(ensemble_dir),
                 "--show-drafts", "--criteria", "research"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Six times seven is 42 [A, B]. It is even [B].")  # the marks shown here
    assert "- It is even  ← B (lab:" in out
    assert "evidence over fluency" in upstream.calls("fuser")[0].all_text().lower()
    assert main(["ask", "What is six times seven?", "-e", "lab", "--ensembles", str(ensemble_dir)]) == 0
    assert capsys.readouterr().out.startswith("Six times seven is 42. It is even.\n")  # and not here


@pytest.mark.anyio
async def test_a_cascade_escalates_on_a_contradiction_when_no_answer_is_named(lab: TestProvider,
                                                                              ensemble_dir: Path) -> None:
    essay = "The causes were many, and historians weigh them differently; " * 4
    lab.script("c1", text=essay + "Economics mattered most.")
    lab.script("c2", text=essay + "Politics mattered most.")
    topic = {"topic": "the main cause", "stances": [{"label": "A", "stance": "economics"},
                                                    {"label": "B", "stance": "politics"}]}
    lab.script("cjudge", analysis={"contradictions": [topic]})
    lab.script("b1", text="Both, in this order.")
    lab.script("b2", text="Both, in that order.")
    lab.script("bfuse", text="Both mattered.")
    files = _cascade_files()
    files["cheap"] = files["cheap"].replace("[synthesizer]", '[reviewer]\nmodel = "lab:cjudge"\n\n[synthesizer]')
    result = await _run(lab, ensemble_dir, "cheap", files=files)
    assert result.answer == "Both mattered." and lab.calls_to("cfuse") == []
    assert result.escalation is not None and "contradiction (the main cause)" in result.escalation.reason
    assert result.escalation.review is not None and result.escalation.review.model == "lab:cjudge"


@pytest.mark.anyio
async def test_the_tools_take_criteria_and_from_run_keeps_them(upstream: Upstream, ensemble_dir: Path) -> None:
    from mcp import Client

    from tests.test_server_tools import lab_server

    upstream.script("alpha", text="def f(x): return x + 1")
    upstream.script("beta", text="f = lambda x: x + 1")
    upstream.script("judge", text=analysis_review({"A": 7, "B": 7}))
    upstream.script("fuser", text="def f(x):\n    return x + 1")
    async with Client(lab_server(upstream, ensemble_dir), mode="legacy") as client:
        compared = await client.call_tool("compare_drafts", {"question": "Write f adding one.", "ensemble": "lab",
                                                             "criteria": "code"})
        assert "Weigh correctness first" in upstream.calls("judge")[0].all_text()
        fused = await client.call_tool("fused_answer", {"from_run": compared.structured_content["run_id"]})
        assert fused.structured_content["answer"].startswith("def f(x):")
        assert "Weigh correctness first" in upstream.calls("fuser")[0].all_text()  # the drafts' criteria kept
        bad = await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "lab", "criteria": " "})
        assert bad.is_error and "criteria must not be empty" in bad.content[0].text
