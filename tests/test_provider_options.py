"""Provider wire options over loopback HTTP: max_completion_tokens where a model requires it, a
reasoning effort, OpenRouter's web plugin and its citations, finish_reason / stop_reason marking a
draft cut by its token limit, and the Anthropic provider's configurable output cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from fusion_mcp import ConfigError, FusionEngine
from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, write_registry
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio


async def _fuse(upstream: Upstream, folder: Path, toml: str):
    async with FusionEngine(write_registry(folder, lab=toml)) as engine:
        return await engine.fuse("Capital of France?", ensemble="lab")


async def test_openai_reasoning_models_get_max_completion_tokens(upstream: Upstream, ensemble_dir: Path):
    toml = lab_toml(upstream.url, [{"model": "gpt-5.5", "max_tokens": 50}, {"model": "o4-mini", "max_tokens": 50},
                                   {"model": "gpt-4.1", "max_tokens": 50}],
                    provider_extra='max_retries = 0\nmax_tokens_field = "auto"')
    await _fuse(upstream, ensemble_dir, toml)
    for model in ("gpt-5.5", "o4-mini"):
        body = upstream.calls(model)[0].body
        assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert upstream.calls("gpt-4.1")[0].body["max_tokens"] == 50


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_a_model_that_refuses_max_tokens_is_retried_and_remembered(upstream: Upstream, ensemble_dir: Path,
                                                                         stream: str):
    upstream.script("picky", text="Paris.", rejects_max_tokens=True)
    upstream.script("plain", text="Paris, France.")
    toml = lab_toml(upstream.url, [{"model": "picky", "max_tokens": 40}, {"model": "plain", "max_tokens": 40}],
                    reviewer=None, synthesizer=None,
                    provider_extra=f'max_retries = 0\nmax_tokens_field = "auto"\nstream = {stream}')
    async with FusionEngine(write_registry(ensemble_dir, lab=toml)) as engine:
        first = await engine.fuse("Capital?", ensemble="lab")
        await engine.fuse("Capital of Italy?", ensemble="lab")
    assert {d.model: d.status for d in first.drafts} == {"lab:picky": "ok", "lab:plain": "ok"}
    bodies = [c.body for c in upstream.calls("picky")]
    assert "max_tokens" in bodies[0] and bodies[1]["max_completion_tokens"] == 40
    assert len(bodies) == 3 and bodies[2]["max_completion_tokens"] == 40  # remembered: no second refusal


async def test_reasoning_effort_in_openrouter_and_openai_fields(upstream: Upstream, ensemble_dir: Path):
    toml = lab_toml(upstream.url, [{"model": "alpha", "reasoning": "high"}, "beta"])
    await _fuse(upstream, ensemble_dir, toml)
    assert upstream.calls("alpha")[0].body["reasoning"] == {"effort": "high"}
    assert "reasoning" not in upstream.calls("beta")[0].body
    toml = lab_toml(upstream.url, [{"model": "gamma", "reasoning": "low"}, "beta"],
                    provider_extra='max_retries = 0\nreasoning_field = "reasoning_effort"')
    await _fuse(upstream, ensemble_dir, toml)
    assert upstream.calls("gamma")[0].body["reasoning_effort"] == "low"
    with pytest.raises(ConfigError, match=r"drafters\[0\]\.reasoning"):
        write_registry(ensemble_dir, bad=lab_toml(upstream.url, [{"model": "a", "reasoning": "max"}])).get("bad")


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_web_search_drafters_keep_their_citations(upstream: Upstream, ensemble_dir: Path, stream: str):
    upstream.script("searcher", text="Paris [1].", annotations=[
        {"type": "url_citation", "url_citation": {"url": "https://example.org/paris", "title": "Paris",
                                                  "start_index": 6, "end_index": 9}},
        {"type": "url_citation", "url_citation": {"url": "https://example.org/paris", "title": "dup"}},
        {"type": "file", "file": {}}])
    upstream.script("beta", text="Paris.")
    toml = lab_toml(upstream.url, [{"model": "searcher", "web": True}, "beta"],
                    provider_extra=f"max_retries = 0\nweb_plugin = true\nstream = {stream}")
    server = create_server(write_registry(ensemble_dir, lab=toml))
    async with Client(server) as client:
        out = (await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})).structured_content
    assert upstream.calls("searcher")[0].body["plugins"] == [{"id": "web"}]
    assert "plugins" not in upstream.calls("beta")[0].body and "plugins" not in upstream.calls("judge")[0].body
    cited = {d["model"]: d["citations"] for d in out["drafts"]}
    assert cited == {"lab:searcher": [{"url": "https://example.org/paris", "title": "Paris", "snippet": None}], "lab:beta": []}
    with pytest.raises(ConfigError, match=r"drafters\[0\]\.web.*web plugin"):
        write_registry(ensemble_dir, bad=lab_toml(upstream.url, [{"model": "a", "web": True}])).get("bad")


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_a_draft_cut_by_its_token_limit_is_marked_truncated(upstream: Upstream, ensemble_dir: Path, stream: str):
    upstream.script("alpha", text="Paris is the capital of", finish_reason="length")
    upstream.script("beta", text="Paris.")
    toml = lab_toml(upstream.url, ["alpha", "beta"], provider_extra=f"max_retries = 0\nstream = {stream}")
    server = create_server(write_registry(ensemble_dir, lab=toml))
    async with Client(server) as client:
        out = (await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})).structured_content
    assert {d["model"]: d["truncated"] for d in out["drafts"]} == {"lab:alpha": True, "lab:beta": False}


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_anthropic_output_cap_is_configurable_and_stop_reason_read(upstream: Upstream, ensemble_dir: Path,
                                                                         stream: str):
    upstream.script("claude-a", text="Paris.", finish_reason="length")
    upstream.script("claude-b", text="Paris, France.")
    toml = lab_toml(upstream.url, ["claude-a", "claude-b"], reviewer=None, synthesizer=None, kind="anthropic",
                    provider_extra=f"max_retries = 0\ndefault_max_tokens = 1234\nstream = {stream}")
    result = await _fuse(upstream, ensemble_dir, toml)
    assert upstream.calls("claude-a")[0].body["max_tokens"] == 1234
    assert {d.model: d.truncated for d in result.drafts} == {"lab:claude-a": True, "lab:claude-b": False}
    toml = lab_toml(upstream.url, ["claude-c"], reviewer=None, synthesizer=None, kind="anthropic")
    await _fuse(upstream, ensemble_dir, toml)
    assert upstream.calls("claude-c")[0].body["max_tokens"] == 4096
