"""The test provider (fusion/test_provider.py): unscripted, every stage of a run accepts its answers;
scripted, a model writes what it is told, fails with the project's errors, waits, hangs or streams."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from fusion_mcp.clock import FakeClock
from fusion_mcp.errors import RateLimitedError, UpstreamError
from fusion_mcp.fusion.review_parser import read_review
from fusion_mcp.fusion.test_provider import Asked, Reply, TestProvider, example_of, stage_of
from fusion_mcp.providers import ChatRequest, Message
from fusion_mcp.providers.base import TextSink
from tests.conftest import lab_toml, offline_engine

pytestmark = pytest.mark.anyio

ASK = ChatRequest(messages=[Message(role="system", content="Answer."), Message(role="user", content="Why?")])


def _ensemble(drafters: list[str], extra: str = "", **kw: object) -> str:
    return lab_toml(None, drafters, **kw).replace("deadline_s = 10\n", f"deadline_s = 10\n{extra}")  # type: ignore[arg-type]


@pytest.mark.parametrize("criteria", [None, "safety"])  # safety: the review's schema asks for risks too
async def test_unscripted_every_stage_answers_in_its_shape(lab: TestProvider, ensemble_dir: Path,
                                                           criteria: str | None) -> None:
    async with offline_engine(ensemble_dir, lab, lab=_ensemble(["a", "b", "c"])) as engine:
        result = await engine.fuse("Why is the sky blue?", ensemble="lab", criteria=criteria)
    assert [c.stage for c in lab.calls] == ["draft"] * 3 + ["review", "synthesis"]
    assert all(d.status == "ok" and d.scores is not None for d in result.drafts)  # the review parsed, all scored
    assert result.review.status == "ok" and result.analysis is not None and not result.degraded
    # the synthesis is the heaviest draft, its claim marked with that draft's label (the prompt asks for marks)
    assert result.answer_source == "synthesis" and result.answer in {d.text for d in result.drafts}
    assert len(result.claims) == 1 and result.claims[0].text == result.answer
    assert result.claims[0].models == [next(d.model for d in result.drafts if d.text == result.answer)]
    asked = lab.calls_to("judge")[0]
    reading = read_review(lab.answer(asked, lab.default), sorted(asked.drafts))
    assert sorted(reading.scores) == ["A", "B", "C"] and not reading.repaired
    if criteria == "safety":
        assert "risks" in (lab.calls_to("judge")[0].request.json_schema or {})["properties"]


async def test_unscripted_compare_only_review_without_analysis(lab: TestProvider, ensemble_dir: Path) -> None:
    async with offline_engine(ensemble_dir, lab, lab=_ensemble(["a", "b"], "review_analysis = false\n")) as engine:
        result = await engine.fuse("Q?", ensemble="lab", synthesize=False)
    assert result.review.status == "ok" and result.analysis is None
    assert all(d.scores is not None for d in result.drafts)
    assert "consensus" not in (lab.calls_to("judge")[0].request.json_schema or {})["properties"]


async def test_scripted_scores_by_draft_text_and_an_unscored_draft(lab: TestProvider, ensemble_dir: Path) -> None:
    lab.script("a", text="right").script("b", text="wrong").script("c", text="silent")
    lab.script("judge", scores={"right": 9, "wrong": (2, 1, 3), "silent": None},
               analysis={"consensus": ["it is a question"],
                         "contradictions": [{"topic": "the answer", "stances": [{"label": "A", "stance": "x"}]}]})
    async with offline_engine(ensemble_dir, lab, lab=_ensemble(["a", "b", "c"])) as engine:
        result = await engine.fuse("Q?", ensemble="lab", synthesize=False)
    by_text = {d.text: d for d in result.drafts}
    assert by_text["right"].scores.accuracy == 9 and by_text["wrong"].scores.accuracy == 1
    assert by_text["silent"].scores is None and result.review.status == "partial"
    assert result.analysis.consensus == ["it is a question"]
    model_a = next(d.model for d in result.drafts if d.label == "A")
    assert result.analysis.contradictions[0].stances[0].model == model_a


async def test_a_scripted_text_function_sees_the_stage_and_the_drafts(lab: TestProvider, ensemble_dir: Path) -> None:
    seen: list[Asked] = []

    def fuser(asked: Asked) -> str:
        seen.append(asked)
        return " + ".join(sorted(asked.drafts.values()))

    lab.script("a", text="one").script("b", text="two").script("fuser", text=fuser)
    async with offline_engine(ensemble_dir, lab, lab=_ensemble(["a", "b"])) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    assert result.answer == "one + two" and result.answer_source == "synthesis"
    assert seen[0].stage == "synthesis" and seen[0].model == "fuser" and "Q?" in seen[0].user


async def test_failures_are_the_projects_errors_for_the_first_n_calls() -> None:
    test = TestProvider("lab").script("m", fail=RateLimitedError, fail_times=2, text="at last")
    for _ in range(2):
        with pytest.raises(RateLimitedError, match=r"lab:m: scripted rate_limited"):
            await test.complete("m", ASK, timeout_s=5)
    assert (await test.complete("m", ASK, timeout_s=5)).text == "at last"
    outage = UpstreamError("lab", "n", "HTTP 503: down", retryable=True)
    test.script("n", fail=outage)
    with pytest.raises(UpstreamError) as info:
        await test.complete("n", ASK, timeout_s=5)
    assert info.value is outage and len(test.calls_to("n")) == 1


async def test_a_delay_a_hang_and_a_pace_run_on_the_clock_given() -> None:
    clock = FakeClock()
    test = TestProvider("lab", clock=clock, default=Reply(text="one two three four"))
    test.script("slow", delay_s=5).script("stuck", hang=True).script("paced", words_per_s=2)
    done: dict[str, str] = {}
    sink = TextSink()

    async def ask(model: str, with_sink: TextSink | None = None) -> None:
        done[model] = (await test.complete(model, ASK, timeout_s=60, sink=with_sink)).text

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "slow")
        tg.start_soon(ask, "stuck")
        tg.start_soon(ask, "paced", sink)
        await clock.advance(1.0)
        assert sink.text == "one two" and "paced" not in done  # two words a second, as they are written
        await clock.advance(1.0)
        assert done.get("paced") == sink.text == "one two three four" and "slow" not in done
        await clock.advance(3.0)
        assert done.get("slow") == "one two three four"
        await clock.advance(1e6)
        assert "stuck" not in done  # a hang never answers: the caller's deadline ends it
        tg.cancel_scope.cancel()


def test_stages_are_told_apart_and_any_schema_gets_a_valid_example() -> None:
    assert stage_of(ASK) == "draft"
    schema = {"type": "object", "required": ["kind", "n", "tags", "ok", "why"], "properties": {
        "kind": {"enum": ["x", "y"]}, "n": {"type": "integer", "minimum": 2, "maximum": 8},
        "tags": {"type": "array", "minItems": 2, "items": {"const": "t"}}, "ok": {"type": "boolean"},
        "why": {"type": "string"}, "optional": {"type": "string"}}}
    structured = ASK.model_copy(update={"json_schema": schema})
    assert stage_of(structured) == "structured"
    assert example_of(schema) == {"kind": "x", "n": 5, "tags": ["t", "t"], "ok": False, "why": "test"}
    assert json.loads(TestProvider("lab").answer(Asked("m", "structured", structured, {}, 0), Reply())) == \
        example_of(schema)
