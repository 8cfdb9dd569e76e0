"""Every reply has a cap, per role, from its token limit: a drafter that sends megabytes is cut,
marked truncated, its stream closed, and never forwarded whole to the reviewer or the synthesizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fusion_mcp.fusion.reply_cap import CEILING_CHARS, CHARS_PER_TOKEN, MIN_CHARS
from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, write_registry
from tests.upstream import Behaviour, Upstream

MAX_TOKENS = 20_000
CAP = MAX_TOKENS * CHARS_PER_TOKEN
BIG = "All work and no play. " * 250_000  # 5.5 MB


async def _fuse(upstream: Upstream, ensemble_dir: Path, **extra: object) -> dict:
    toml = lab_toml(upstream.url, [{"model": "big", "max_tokens": MAX_TOKENS}, "small"])
    server = create_server(write_registry(ensemble_dir, lab=toml))
    async with Client(server) as client:
        result = await client.call_tool("fused_answer", {"question": "Write.", "ensemble": "lab",
                                                         "include_drafts": True, **extra})
    assert not result.is_error, result.content
    return result.structured_content


async def _fuse_with_big(upstream: Upstream, ensemble_dir: Path, **big: Any) -> tuple[dict, dict]:
    """A run whose drafter `big` behaves as `big` says and whose other models answer briefly: the
    answer, and big's draft."""
    upstream.script("big", **big)
    upstream.script("small", text="A short draft.")
    upstream.script("fuser", text="The answer.")
    answer = await _fuse(upstream, ensemble_dir)
    return answer, next(d for d in answer["drafts"] if d["model"] == "lab:big")


@pytest.mark.anyio
async def test_a_huge_draft_is_cut_marked_and_never_forwarded_whole(upstream: Upstream, ensemble_dir: Path) -> None:
    # 5.5 MB streamed in pieces of a few hundred KB
    upstream.script("big", text=BIG, output_tokens=50_000, tokens_per_s=200_000)
    upstream.script("small", text="A short draft.")
    upstream.script("judge", text='{"A": {"score": 8}, "B": {"score": 8}}')
    upstream.script("fuser", text="The answer.")
    answer = await _fuse(upstream, ensemble_dir)
    big = next(d for d in answer["drafts"] if d["model"] == "lab:big")
    assert big["status"] == "ok" and big["truncated"] is True
    assert CAP - 100 <= len(big["text"]) <= CAP and BIG.startswith(big["text"])
    assert "big" in upstream.disconnects  # the stream was closed at the cap, not read to its end
    for model in ("judge", "fuser"):  # what went on to the next models
        sent = sum(len(r.all_text()) for r in upstream.calls(model))
        assert 0 < sent < 2 * CAP + 50_000, (model, sent)


@pytest.mark.anyio
async def test_a_reply_in_one_huge_piece_fails_that_draft_with_a_clear_error(upstream: Upstream,
                                                                              ensemble_dir: Path) -> None:
    answer, big = await _fuse_with_big(upstream, ensemble_dir, text=BIG, output_tokens=1)  # one 5.5 MB event
    assert big["status"] == "bad_response" and "longer than the reply cap" in big["error"]
    assert answer["answer"] and any("lab:big" in r for r in answer["degraded_reasons"])


@pytest.mark.anyio
async def test_a_huge_synthesis_is_cut_too(upstream: Upstream, ensemble_dir: Path) -> None:
    for m in ("big", "small"):
        upstream.script(m, text=f"Draft of {m}.")
    upstream.script("judge", text='{"A": {"score": 8}, "B": {"score": 8}}')
    upstream.script("fuser", Behaviour(text=BIG * 2, output_tokens=100_000, tokens_per_s=400_000))
    answer = await _fuse(upstream, ensemble_dir)
    assert len(answer["answer"]) <= CEILING_CHARS and BIG.startswith(answer["answer"][:1000])
    assert len(answer["answer"]) >= MIN_CHARS


HUGE_JSON = b'{"choices": [{"message": {"role": "assistant", "content": "' + b"x" * (20 * 2**20) + b'"}}]}'


@pytest.mark.anyio
async def test_a_huge_body_read_whole_is_not_read_past_its_cap(upstream: Upstream, ensemble_dir: Path) -> None:
    # A server that ignores `stream` and answers one 20 MiB JSON body: that draft fails, named; the run answers.
    answer, big = await _fuse_with_big(upstream, ensemble_dir, raw_body=HUGE_JSON)
    assert big["status"] == "bad_response" and "a reply body over 8 MiB" in big["error"]
    assert answer["answer"] and any("lab:big" in r for r in answer["degraded_reasons"])


@pytest.mark.anyio
async def test_a_huge_error_page_is_not_read_past_its_cap(upstream: Upstream, ensemble_dir: Path) -> None:
    _, big = await _fuse_with_big(upstream, ensemble_dir, status=500, error_message="e" * (20 * 2**20))
    assert big["status"] == "bad_response" and "(HTTP 500): not read" in big["error"]
