"""The review's structured analysis end to end: the reviewer returns it in the same one call, its labels
come back as models, the synthesis builds on it, compare_drafts returns it, fused_answer gives its
confidence picture, and a reply cut off by max_tokens keeps what it completed. The schema sent over the
wire (`response_format`) is checked over the loopback upstream; the rest goes through the test
provider (`lab`: no sockets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fusion_mcp import FusionEngine
from fusion_mcp.errors import UpstreamError
from fusion_mcp.fusion.review_parser import read_review
from fusion_mcp.fusion.test_provider import TestProvider
from fusion_mcp.server.app import create_server
from tests.conftest import (
    analysis_review,
    drafts_in_prompt,
    lab_toml,
    offline_engine,
    scoring_reviewer,
    write_registry,
)
from tests.upstream import Behaviour, Upstream

PARIS, LYON, MARSEILLE = "Paris is the capital of France.", "It is Lyon.", "Paris; Marseille is the largest port."


def judging(drafts: dict[str, str]) -> str:
    """A reviewer that finds the labels of the drafts it was shown (label -> text), and compares them."""
    label = {text: lab for lab, text in drafts.items()}
    p, ly, m = label[PARIS], label[LYON], label[MARSEILLE]
    return analysis_review(
        {p: 9, ly: 2, m: 8},
        consensus=["France has one capital city."],
        contradictions=[{"topic": "which city is the capital",
                         "stances": [{"label": p, "stance": "Paris"}, {"label": ly, "stance": "Lyon"},
                                     {"label": m, "stance": "Paris"}]}],
        partial_coverage=[{"point": "Paris is the capital", "labels": [p, m]}],
        unique_insights=[{"label": m, "insight": "Marseille is the largest port."}],
        blind_spots=["since when Paris has been the capital"],
    )


def script(upstream: Upstream) -> None:
    upstream.script("alpha", text=PARIS)
    upstream.script("beta", text=LYON)
    upstream.script("gamma", text=MARSEILLE)
    upstream.script("judge", Behaviour(text=lambda body: judging(drafts_in_prompt(
        "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")))))
    upstream.script("fuser", text="Paris.")


def script_lab(lab: TestProvider) -> None:
    lab.script("alpha", text=PARIS).script("beta", text=LYON).script("gamma", text=MARSEILLE)
    lab.script("judge", text=lambda asked: judging(asked.drafts)).script("fuser", text="Paris.")


@pytest.mark.anyio
async def test_one_review_call_gives_scores_and_an_analysis_mapped_to_models(upstream: Upstream, ensemble_dir: Path):
    script(upstream)
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta", "gamma"],
                                                    provider_extra="max_retries = 0\nstructured_output = true"))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Capital of France?", ensemble="lab")

    assert len(upstream.calls("judge")) == 1  # scores and analysis in the same one call
    schema = upstream.calls("judge")[0].body["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["scores", "consensus", "contradictions", "partial_coverage",
                                          "unique_insights", "blind_spots"]
    by_model = {d.model: d for d in result.drafts}
    assert by_model["lab:alpha"].scores.accuracy == 9 and by_model["lab:beta"].scores.accuracy == 2
    a = result.analysis
    assert a is not None and a.consensus == ["France has one capital city."]
    [c] = a.contradictions
    assert {s.model: s.stance for s in c.stances} == {"lab:alpha": "Paris", "lab:beta": "Lyon", "lab:gamma": "Paris"}
    assert sorted(a.partial_coverage[0].models) == ["lab:alpha", "lab:gamma"]
    assert a.unique_insights[0].model == "lab:gamma" and a.blind_spots == ["since when Paris has been the capital"]
    # the synthesizer was told to build on it, and saw it by label, delimited as data
    sent = upstream.calls("fuser")[0]
    system, user = sent.body["messages"][0]["content"], sent.user_text()
    assert "resolve each contradiction explicitly" in system
    assert "- Consensus: France has one capital city." in user
    assert f"{by_model['lab:beta'].label}: Lyon" in user and "Contradiction on which city is the capital" in user
    assert f"Unique to {by_model['lab:gamma'].label}: Marseille is the largest port." in user
    assert "Blind spot: since when Paris has been the capital" in user
    assert "<analysis-" in user and "lab:alpha" not in user  # labels only: no model names


async def _tool(lab: TestProvider, folder: Path, name: str, args: dict[str, Any]) -> dict[str, Any]:
    reg = write_registry(folder, lab=lab_toml(None, ["alpha", "beta", "gamma"]))
    async with FusionEngine(reg, providers={"lab": lab}) as engine, Client(create_server(reg, engine=engine)) as client:
        result = await client.call_tool(name, {"ensemble": "lab", **args})
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.anyio
async def test_compare_drafts_returns_the_analysis_for_a_host_to_write_from(lab: TestProvider, ensemble_dir: Path):
    script_lab(lab)
    out = await _tool(lab, ensemble_dir, "compare_drafts", {"question": "Capital of France?"})
    stances = {s["model"]: s["stance"] for s in out["analysis"]["contradictions"][0]["stances"]}
    assert stances["lab:beta"] == "Lyon"
    assert out["analysis"]["unique_insights"] == [
        {"label": next(d["label"] for d in out["drafts"] if d["model"] == "lab:gamma"), "model": "lab:gamma",
         "insight": "Marseille is the largest port."}]
    assert lab.calls_to("fuser") == []


@pytest.mark.anyio
async def test_fused_answer_gives_a_confidence_picture(lab: TestProvider, ensemble_dir: Path):
    script_lab(lab)
    out = await _tool(lab, ensemble_dir, "fused_answer", {"question": "Capital of France?"})
    conf = out["confidence"]
    assert out["answer"] == "Paris."
    assert conf["level"] == "medium" and conf["contradictions"] == ["which city is the capital"]
    assert conf["consensus_points"] == 1 and conf["blind_spots"] == 1
    assert (conf["drafts_ok"], conf["drafts_total"]) == (3, 3) and 0 <= conf["agreement"] <= 1


@pytest.mark.anyio
async def test_a_unanimous_run_reads_high_confidence(lab: TestProvider, ensemble_dir: Path):
    script_lab(lab)
    lab.script("judge", text=lambda asked: analysis_review(dict.fromkeys(asked.drafts, 9),
                                                           consensus=["Paris is the capital."]))
    out = await _tool(lab, ensemble_dir, "fused_answer", {"question": "Capital of France?"})
    assert out["confidence"]["level"] == "high" and out["confidence"]["contradictions"] == []


@pytest.mark.anyio
async def test_a_review_cut_off_by_max_tokens_keeps_its_complete_entries(lab: TestProvider, ensemble_dir: Path):
    script_lab(lab)
    # ends inside the blind spots... and the insight before them
    lab.script("judge", text=lambda asked: judging(asked.drafts)[:-60], truncated=True)
    async with offline_engine(ensemble_dir, lab, lab=lab_toml(None, ["alpha", "beta", "gamma"])) as engine:
        result = await engine.fuse("Capital of France?", ensemble="lab")
    assert all(d.scores is not None for d in result.drafts)  # every score was complete
    assert result.review.truncated and result.review.status == "ok"
    assert "cut off" in (result.review.error or "")
    assert result.analysis is not None and len(result.analysis.contradictions) == 1
    assert result.analysis.blind_spots == []  # the half-written entry is dropped, not guessed
    assert not result.degraded  # every score is in: only the analysis lost its tail, as review.error says
    assert result.answer == "Paris."


def test_truncation_keeps_only_whole_entries() -> None:
    full = analysis_review({"A": 8, "B": 3}, consensus=["one", "two"],
                           contradictions=[{"topic": "t", "stances": [{"label": "A", "stance": "yes"},
                                                                      {"label": "B", "stance": "no"}]}])
    cut_in_scores = full[: full.index('"B"') + 30]
    reading = read_review(cut_in_scores, ["A", "B"])
    assert reading.repaired and set(reading.scores) == {"A"} and reading.analysis is None
    cut_in_stances = full[: full.index('"no"') + 2]
    reading = read_review(cut_in_stances, ["A", "B"])
    assert set(reading.scores) == {"A", "B"} and reading.analysis.consensus == ["one", "two"]
    assert reading.analysis.contradictions == []  # its second stance was cut: the entry is not whole
    assert not read_review(full, ["A", "B"]).repaired


def test_odd_analysis_entries_are_dropped_one_by_one() -> None:
    text = json.dumps({
        "A": {"score": 7}, "B": {"score": 4},
        "Consensus": "both say yes",
        "disagreements": [{"topic": "why", "stances": {"Draft A": "because", "Z": "unknown label"}},
                          {"topic": "no stances"}, "junk"],
        "partial_coverage": [{"point": "detail", "labels": "A, B, Q"}],
        "unique_insights": {"B": "a trick"},
        "gaps": [None, "history"],
    })
    a = read_review(text, ["A", "B"]).analysis
    assert a.consensus == ["both say yes"]
    assert [(c.topic, [(s.label, s.stance) for s in c.stances]) for c in a.contradictions] == [("why", [("A", "because")])]
    assert a.partial_coverage[0].labels == ["A", "B"]
    assert [(u.label, u.insight) for u in a.unique_insights] == [("B", "a trick")]
    assert a.blind_spots == ["history"]


def test_copied_placeholders_are_not_an_analysis() -> None:
    text = json.dumps({"scores": {"A": {"reason": "<one sentence>", "consistency": 7, "accuracy": 7, "completeness": 7}},
                       "consensus": ["<a point most drafts agree on>", "Paris"],
                       "contradictions": [{"topic": "<a disputed topic>", "stances": [{"label": "A", "stance": "x"}]}],
                       "blind_spots": ["..."]})
    reading = read_review(text, ["A", "B"])
    assert reading.scores["A"].reason == "" and reading.analysis.consensus == ["Paris"]
    assert reading.analysis.contradictions == [] and reading.analysis.blind_spots == []


@pytest.mark.anyio
async def test_an_ensemble_can_keep_its_reviewer_to_scores(upstream: Upstream, ensemble_dir: Path):
    script(upstream)
    upstream.script("judge", scoring_reviewer({PARIS: 9, LYON: 2, MARSEILLE: 8}))
    toml = "review_analysis = false\n" + lab_toml(upstream.url, ["alpha", "beta", "gamma"],
                                                  provider_extra="max_retries = 0\nstructured_output = true")
    async with FusionEngine(write_registry(ensemble_dir, lab=toml)) as engine:
        result = await engine.fuse("Capital of France?", ensemble="lab")
    sent = upstream.calls("judge")[0]
    assert list(sent.body["response_format"]["json_schema"]["schema"]["properties"]) == ["scores"]
    assert "contradictions" not in sent.all_text() and "compare them" not in sent.user_text()
    assert all(d.scores is not None for d in result.drafts) and result.analysis is None
    assert "<analysis-" not in upstream.calls("fuser")[0].user_text()


@pytest.mark.anyio
async def test_drafts_giving_one_final_answer_read_high_confidence(lab: TestProvider, ensemble_dir: Path):
    for model, text in (("alpha", "Paris."), ("beta", "paris"), ("gamma", "Paris")):
        lab.script(model, text=text)
    lab.script("fuser", text="Paris.")
    out = await _tool(lab, ensemble_dir, "fused_answer", {"question": "Capital of France?"})
    assert lab.calls_to("judge") == []  # nothing for a review to weigh
    assert out["confidence"]["level"] == "high" and out["confidence"]["unanimous"] is True


@pytest.mark.anyio
async def test_most_drafts_failing_reads_low_confidence(lab: TestProvider, ensemble_dir: Path):
    script_lab(lab)
    lab.script("beta", fail=UpstreamError).script("gamma", fail=UpstreamError)
    out = await _tool(lab, ensemble_dir, "fused_answer", {"question": "Capital of France?"})
    assert out["confidence"]["level"] == "low" and out["confidence"]["drafts_ok"] == 1
