"""Pipeline logic with function-backed providers (no HTTP), and wire-format error mapping through
httpx.MockTransport. What needs real sockets (cancellation, timeouts, streaming) stays on the
loopback upstream in the other test files."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx  # the HTTP client the providers use
import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.errors import ConfigError, RateLimitedError, UnparseableResponseError, UpstreamError
from fusion_mcp.providers import ChatRequest, FunctionProvider, Message, ProviderSpec
from fusion_mcp.providers.openai_compat import OpenAICompatProvider
from tests.conftest import drafts_in_prompt, review_json, write_registry

FN_ENSEMBLE = """
deadline_s = 10
[providers.fn]
kind = "function"
[[drafters]]
model = "fn:drafter-right"
[[drafters]]
model = "fn:drafter-wrong"
[[drafters]]
model = "fn:drafter-down"
[reviewer]
model = "fn:judge"
[synthesizer]
model = "fn:fuser"
"""


def scripted(model: str, request: ChatRequest) -> str:
    user = request.messages[-1].content
    if model == "drafter-right":
        return "Paris is the capital of France."
    if model == "drafter-wrong":
        return "Lyon."
    if model == "drafter-down":
        raise UpstreamError("fn", model, "scripted outage")
    drafts = drafts_in_prompt(user)
    if model == "judge":
        return review_json({label: (9, 9, 9) if "Paris" in text else (1, 1, 1) for label, text in drafts.items()})
    return "FUSED from " + ",".join(drafts)  # the synthesizer: lists the labels in the order it saw them


@pytest.mark.anyio
async def test_a_run_with_function_providers_weighs_reviews_and_fuses(ensemble_dir: Path) -> None:
    fn = FunctionProvider("fn", scripted)
    reg = write_registry(ensemble_dir, fn=FN_ENSEMBLE)
    async with FusionEngine(reg, providers={"fn": fn}) as engine:
        result = await engine.fuse("Capital of France?", ensemble="fn")
    by_model = {d.model: d for d in result.drafts}
    right, wrong, down = by_model["fn:drafter-right"], by_model["fn:drafter-wrong"], by_model["fn:drafter-down"]
    assert down.status == "upstream_error" and "scripted outage" in (down.error or "")
    assert right.weight > 4 * wrong.weight and down.weight == 0
    # the synthesizer saw the heaviest draft first
    assert result.answer == f"FUSED from {right.label},{wrong.label}"
    # no model name ever reached the reviewer or the synthesizer: only anonymous labels
    later = [req for model, req in fn.calls if model in ("judge", "fuser")]
    assert later and all("drafter-" not in m.content for r in later for m in r.messages)
    assert result.degraded and any("fn:drafter-down" in r for r in result.degraded_reasons)


@pytest.mark.anyio
async def test_a_function_provider_not_handed_in_is_a_clear_error(ensemble_dir: Path) -> None:
    reg = write_registry(ensemble_dir, fn=FN_ENSEMBLE)
    async with FusionEngine(reg) as engine:
        with pytest.raises(ConfigError, match=r"kind 'function': pass it ready-made, as FusionEngine\(providers="):
            await engine.fuse("Q?", ensemble="fn")


def _openai(handler) -> OpenAICompatProvider:
    spec = ProviderSpec(name="mock", kind="openai", base_url="http://mock.invalid/v1", key_required=False)
    return OpenAICompatProvider(spec, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


ASK = ChatRequest(messages=[Message(role="user", content="hi")])


@pytest.mark.anyio
async def test_wire_format_error_mapping_through_a_mock_transport() -> None:
    def rate_limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow down"}})

    with pytest.raises(RateLimitedError) as info:
        await _openai(rate_limited).complete("m", ASK, timeout_s=5)
    assert info.value.retry_after == 7 and "slow down" in info.value.reason

    def error_with_200(request: httpx.Request) -> httpx.Response:  # OpenRouter reports some errors with a 200
        return httpx.Response(200, json={"error": {"message": "provider overloaded"}})

    with pytest.raises(UpstreamError, match="provider overloaded"):
        await _openai(error_with_200).complete("m", ASK, timeout_s=5)

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    with pytest.raises(UnparseableResponseError, match="not JSON"):
        await _openai(not_json).complete("m", ASK, timeout_s=5)


@pytest.mark.anyio
async def test_content_parts_are_joined_and_the_body_is_openai_shaped() -> None:
    seen: list[dict] = []

    def parts(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": [{"type": "text", "text": "a"},
                                                                           {"type": "text", "text": "b"}]}}]})

    completion = await _openai(parts).complete("m", ASK.model_copy(update={"max_tokens": 9}), timeout_s=5)
    assert completion.text == "ab"
    assert seen[0]["model"] == "m" and seen[0]["max_tokens"] == 9 and seen[0]["messages"] == [{"role": "user", "content": "hi"}]
