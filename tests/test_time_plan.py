"""The time plan at a real model's pace: the synthesis is protected, stragglers and the review give way,
and a run ends soon after its work is done whatever its deadline. Paced like the issue's frontier
measurement (drafts done at 18, 23 and 30 s, a 9 s review, a 15 s synthesis, a 45 s deadline), with
every time scaled by SCALE so that the test takes seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.config.settings import Settings
from fusion_mcp.fusion.paces import PaceBook
from tests.conftest import eventually_async, lab_toml, review_json, write_registry
from tests.upstream import Behaviour, Upstream

SCALE = 0.3


def paced(text: str, ttft: float, rate: float, tokens: int) -> Behaviour:
    """A model with a real one's shape, its times scaled by SCALE."""
    return Behaviour(text=text, ttft=ttft * SCALE, tokens_per_s=rate / SCALE, output_tokens=tokens)


def frontier(upstream: Upstream) -> None:
    upstream.script("opus", paced("Answer: 42, because the bat costs more.", 0.7, 70, 1200))  # done at 17.8 s
    upstream.script("gpt", paced("Answer: 41, I think.", 12.0, 44, 500))  # reasoning first; done at 23.3 s
    upstream.script("gemini", paced("Answer: 40.", 13.5, 100, 1600))  # done at 29.5 s
    upstream.script("judge", paced(review_json({k: (8, 8, 8) for k in "ABC"}), 3.0, 44, 265))  # 9 s
    upstream.script("fuser", paced("Answer: 42. The fused reasoning.", 0.7, 70, 1000))  # 15 s


def frontier_priors(folder: Path) -> Path:
    """What the engine knows of these models before it has seen them (as config/paces.toml ships)."""
    rows = {"opus": (0.7, 70), "gpt": (12.0, 44), "gemini": (13.5, 100), "judge": (3.0, 44), "fuser": (0.7, 70)}
    path = folder / "paces.toml"
    path.write_text("".join(f'["lab:{m}"]\nttft_s = {t * SCALE}\ntokens_per_s = {r / SCALE}\n\n' for m, (t, r) in rows.items()))
    return path


def test_at_frontier_pace_ask_returns_the_synthesis_within_the_deadline(upstream, ensemble_dir, tmp_path):
    frontier(upstream)
    deadline = 45 * SCALE
    (ensemble_dir / "lab.toml").write_text(lab_toml(upstream.url, ["opus", "gpt", "gemini"], deadline_s=deadline, min_drafts=2))
    env = {**os.environ, "FUSION_MCP_ENSEMBLES": str(ensemble_dir), "FUSION_MCP_PACES": str(frontier_priors(tmp_path))}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ask", "Bat and ball?", "-e", "lab", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    wall = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["answer_source"] == "synthesis" and result["synthesis"]["status"] == "ok"
    assert result["answer"].startswith("Answer: 42. The fused reasoning.")
    assert wall < deadline + 3  # the run itself ends within its deadline; the rest is process start-up
    assert result["totals"]["wall_s"] < deadline
    status = {d["model"]: d["status"] for d in result["drafts"]}
    assert status == {"lab:opus": "ok", "lab:gpt": "ok", "lab:gemini": "timeout"}
    # the review (9 s) could not fit before the synthesis had to start: skipped, with the reason
    assert result["review"]["status"] == "skipped" and "predicted" in result["review"]["error"]
    schedule = result["schedule"]
    assert schedule["synthesis_start_by_s"] is not None and schedule["drafts_cut_at_s"] is not None
    assert any("review skipped" in d for d in schedule["decisions"])
    # the synthesis streamed: its time to first token and rate are recorded
    assert result["synthesis"]["ttft_s"] is not None and result["synthesis"]["output_tokens_per_s"] is not None


@pytest.mark.anyio
async def test_a_drafter_that_never_answers_costs_seconds_not_the_deadline(upstream, ensemble_dir):
    for name, text in (("a", "Answer: 1"), ("b", "Answer: 2")):
        upstream.script(name, text=text, ttft=0.2, tokens_per_s=100, output_tokens=20)
    upstream.script("never", hang=True)
    upstream.script("judge", text=review_json({k: (7, 7, 7) for k in "ABC"}), ttft=0.2, tokens_per_s=100, output_tokens=20)
    upstream.script("fuser", text="Answer: 1 or 2", ttft=0.2, tokens_per_s=100, output_tokens=20)
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b", "never"], deadline_s=45, min_drafts=2))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    assert result.answer_source == "synthesis" and result.review.status == "ok"
    assert {d.model: d.status for d in result.drafts}["lab:never"] == "timeout"
    # quorum after ~0.4 s, a grace of 2 s, then review and synthesis of ~0.4 s each: seconds, not 45
    # (the exact cut is tested on a fake clock in test_draft_round.py)
    assert result.totals.wall_s < 10


@pytest.mark.anyio
async def test_a_synthesis_cut_by_the_deadline_returns_what_it_had_written(upstream, ensemble_dir):
    upstream.script("a", text="Answer: 1")
    upstream.script("b", text="Answer: 2")
    upstream.script("judge", text=review_json({"A": (7, 7, 7), "B": (6, 6, 6)}))
    long_answer = "The fused answer is long and careful, written word by word. " * 4
    upstream.script("fuser", text=long_answer, ttft=0.1, tokens_per_s=20, output_tokens=80)  # 4 s to write
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b"], deadline_s=2.5))
    seen: list[str] = []
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab", on_text=seen.append)
    assert result.answer_source == "synthesis" and result.synthesis.status == "truncated"
    assert result.answer and long_answer.startswith(result.answer) and result.answer != long_answer
    assert "".join(seen) == result.answer  # what a terminal showed as it was written
    assert result.degraded and any(r.startswith("synthesis truncated (lab:fuser)") for r in result.degraded_reasons)
    assert result.totals.wall_s < 2.5 + 2.0  # its deadline, with room for a loaded machine


@pytest.mark.anyio
async def test_unanimous_drafts_skip_the_review_unless_the_ensemble_says_not_to(upstream, ensemble_dir):
    for name in ("a", "b", "c"):
        upstream.script(name, text=f"Working it out ({name})...\nAnswer: **42**.")
    upstream.script("judge", text=review_json({k: (7, 7, 7) for k in "ABC"}))
    upstream.script("fuser", text="42")
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b", "c"]),
                         strict="skip_review_when_unanimous = false\n" + lab_toml(upstream.url, ["a", "b", "c"]))
    async with FusionEngine(reg) as engine:
        quick = await engine.fuse("Q?", ensemble="lab")
        assert upstream.calls("judge") == []
        strict = await engine.fuse("Q?", ensemble="strict")
    assert quick.review.status == "skipped" and "same final answer ('42')" in (quick.review.error or "")
    assert not quick.degraded and quick.answer == "42"
    assert strict.review.status == "ok" and len(upstream.calls("judge")) == 1


@pytest.mark.anyio
async def test_paces_learned_in_one_run_are_kept_for_the_next(upstream, ensemble_dir):
    upstream.script("a", text="x", ttft=0.3, tokens_per_s=50, output_tokens=10)
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a"], None, None))
    async with FusionEngine.from_settings(registry=reg) as engine:  # the pace book beside the call cache
        await engine.fuse("Q?", ensemble="lab")
        await engine.fuse("Q2?", ensemble="lab")  # its save comes within 5 s of the first: written at close
    book = PaceBook.beside_cache(Settings.from_env().cache_path)  # a new process reads what the last one learned
    pace = book.pace("lab:a")
    assert pace is not None and pace.samples == 2 and 0.25 <= pace.ttft_s < 1.0
    assert book.output_tokens("lab:a", "draft") == 10


@pytest.mark.anyio
async def test_a_drafter_behind_a_rate_limit_gets_the_grace_not_the_whole_plan(upstream, ensemble_dir):
    """Over real HTTP: a drafter answering 429 with a 5 s Retry-After waits to retry; once the quorum
    is in it gets the straggler grace, not the time until the synthesis must start (issue 17)."""
    for name in ("a", "b"):
        upstream.script(name, text=f"Answer: {name}", ttft=0.2, tokens_per_s=100, output_tokens=20)
    upstream.script("limited", status=429, retry_after="5")
    upstream.script("judge", text=review_json({k: (7, 7, 7) for k in "ABC"}), ttft=0.2, tokens_per_s=100, output_tokens=20)
    upstream.script("fuser", text="Answer: a or b", ttft=0.2, tokens_per_s=100, output_tokens=20)
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b", "limited"], deadline_s=45, min_drafts=2,
                                                    provider_extra="max_retries = 3"))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    assert {d.model: d.status for d in result.drafts}["lab:limited"] == "timeout"
    assert any("(lab:limited): queued behind a rate limit (429)" in d for d in result.schedule.decisions)
    assert result.answer_source == "synthesis"
    assert result.totals.wall_s < 15  # the grace (2 s) and two short stages; it waited ~31 s before


@pytest.mark.anyio
async def test_a_reviewer_that_never_answers_costs_seconds_not_its_share(upstream, ensemble_dir):
    for name in ("a", "b"):
        upstream.script(name, text=f"Answer: {name}", ttft=0.2, tokens_per_s=100, output_tokens=20)
    upstream.script("judge", hang=True)
    upstream.script("fuser", text="Answer: a or b", ttft=0.2, tokens_per_s=100, output_tokens=20)
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["a", "b"], deadline_s=45, min_drafts=2))
    async with FusionEngine(reg) as engine:
        result = await engine.fuse("Q?", ensemble="lab")
    assert result.review.status == "timeout" and "treated as hung" in (result.review.error or "")
    assert result.answer_source == "synthesis"
    assert result.totals.wall_s < 15  # hung after 4 s without a first byte; it had 17 s before
    assert await eventually_async(lambda: "judge" in upstream.disconnects)  # the request was dropped
