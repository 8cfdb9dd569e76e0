"""Streamed calls at a real model's pace, in both wire formats, over real HTTP: the text arrives as it is
written, each call records its time to first token and output rate, a server that refuses to stream is
asked plainly, and a call cut at its deadline keeps what had arrived."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.errors import ProviderTimeoutError
from fusion_mcp.providers import ChatRequest, Message
from fusion_mcp.providers.base import TextSink
from tests.conftest import eventually_async, lab_toml, write_registry
from tests.upstream import Upstream

ASK = ChatRequest(messages=[Message(role="user", content="Tell me.")], max_tokens=100)
ANSWER = "The answer streams in forty little pieces, one after another, at a steady pace."

pytestmark = pytest.mark.anyio


def _role(upstream: Upstream, folder: Path, kind: str, extra: str = "max_retries = 0"):
    reg = write_registry(folder, lab=lab_toml(upstream.url, ["m"], None, None, kind=kind, provider_extra=extra))
    return reg.get("lab").drafters[0]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_paced_stream_arrives_as_written_with_its_pace_recorded(upstream, ensemble_dir, kind):
    # a real model's shape, scaled down: first token after 0.4 s, then 40 tokens at 50 tokens/s (0.8 s)
    upstream.script("m", text=ANSWER, ttft=0.4, tokens_per_s=50, output_tokens=40, input_tokens=9, cost=0.002)
    arrivals: list[float] = []
    sink = TextSink(on_text=lambda piece: arrivals.append(time.perf_counter()))
    async with FusionEngine.from_settings() as engine:
        completion = await engine.providers.get(_role(upstream, ensemble_dir, kind).provider).complete(
            "m", ASK, timeout_s=10, sink=sink)
    assert completion.text == ANSWER == sink.text
    assert upstream.calls("m")[0].body["stream"] is True
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (9, 40)
    if kind == "openai":
        assert completion.cost_usd == 0.002  # OpenRouter-style usage in the last chunk
    # the text came in many pieces spread over the generation, not all at the end
    assert len(arrivals) >= 20
    assert arrivals[-1] - arrivals[0] > 0.5 * completion.latency_s - completion.ttft_s
    assert completion.ttft_s is not None and 0.35 <= completion.ttft_s < completion.latency_s
    assert completion.output_tokens_per_s is not None
    assert 0.4 * 50 < completion.output_tokens_per_s < 2.5 * 50


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_server_that_refuses_to_stream_is_asked_plainly_from_then_on(upstream, ensemble_dir, kind):
    upstream.script("m", text="plain answer", refuses_stream=True)
    role = _role(upstream, ensemble_dir, kind)
    async with FusionEngine.from_settings() as engine:
        first = await engine.call(role, ASK, timeout_s=5)
        second = await engine.call(role, ASK, timeout_s=5)
    assert first.text == second.text == "plain answer"
    assert [c.body.get("stream", False) for c in upstream.calls("m")] == [True, False, False]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_cut_at_its_deadline_keeps_what_arrived_and_hangs_up(upstream, ensemble_dir, kind):
    upstream.script("m", text=ANSWER, ttft=0.1, tokens_per_s=20, output_tokens=40)  # 2 s in all
    sink = TextSink()
    async with FusionEngine.from_settings() as engine:
        with pytest.raises(ProviderTimeoutError):
            await engine.providers.get(_role(upstream, ensemble_dir, kind).provider).complete(
                "m", ASK, timeout_s=1.0, sink=sink)
    assert sink.text and ANSWER.startswith(sink.text) and sink.text != ANSWER
    assert await eventually_async(lambda: "m" in upstream.disconnects)


async def test_stream_can_be_turned_off_per_provider(upstream, ensemble_dir):
    upstream.script("m", text="ok")
    role = _role(upstream, ensemble_dir, "openai", extra="max_retries = 0\nstream = false")
    async with FusionEngine.from_settings() as engine:
        await engine.call(role, ASK, timeout_s=5)
    assert upstream.calls("m")[0].body["stream"] is False
