"""Providers over real HTTP against the loopback upstream: both wire formats, errors, retries, cost."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx2
import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensembles import Ensemble
from fusion_mcp.errors import (
    AuthenticationError,
    MissingKeyError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UnparseableResponseError,
    UpstreamError,
)
from fusion_mcp.providers import ChatRequest, Message
from fusion_mcp.providers.http_client import error_for_status
from tests.conftest import LAB_KEY, eventually_async, lab_toml, write_registry
from tests.upstream import Behaviour, Upstream

ASK = ChatRequest(messages=[Message(role="system", content="be brief"), Message(role="user", content="2+2?")],
                  temperature=0.3, max_tokens=50, seed=7)


def _ensemble(upstream: Upstream, folder: Path, kind: str = "openai", extra: str = "max_retries = 0") -> Ensemble:
    reg = write_registry(folder, lab=lab_toml(upstream.url, ["m"], None, None, kind=kind, provider_extra=extra))
    return reg.get("lab")


async def _call(upstream: Upstream, folder: Path, *, kind: str = "openai", extra: str = "max_retries = 0",
                timeout_s: float = 5.0):
    ens = _ensemble(upstream, folder, kind, extra)
    async with FusionEngine.from_settings() as engine:
        return await engine.call(ens.drafters[0], ASK, timeout_s=timeout_s)


@pytest.mark.anyio
async def test_openai_wire_format(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="4", input_tokens=12, output_tokens=3)
    c = await _call(upstream, ensemble_dir)
    assert (c.text, c.usage.input_tokens, c.usage.output_tokens) == ("4", 12, 3)
    req = upstream.calls("m")[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {LAB_KEY}"
    assert req.body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (req.body["temperature"], req.body["max_tokens"], req.body["seed"]) == (0.3, 50, 7)
    assert c.latency_s > 0


@pytest.mark.anyio
async def test_anthropic_wire_format(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="four", input_tokens=20, output_tokens=2)
    c = await _call(upstream, ensemble_dir, kind="anthropic")
    assert (c.text, c.usage.input_tokens, c.usage.output_tokens) == ("four", 20, 2)
    req = upstream.calls("m")[0]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == LAB_KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.body["system"] == "be brief"
    assert req.body["messages"] == [{"role": "user", "content": "2+2?"}]
    assert req.body["max_tokens"] == 50


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("behaviour", "error", "words"),
    [
        (Behaviour(status=401), AuthenticationError, "HTTP 401"),
        (Behaviour(status=404), UnknownModelError, "is the model id right?"),
        (Behaviour(status=500), UpstreamError, "HTTP 500"),
        (Behaviour(status=429, retry_after="1"), RateLimitedError, "HTTP 429"),
        (Behaviour(malformed=True), UnparseableResponseError, "not JSON"),
        (Behaviour(empty_choices=True), UnparseableResponseError, ""),
        (Behaviour(text="   "), UnparseableResponseError, "empty answer"),
    ],
)
async def test_failures_become_typed_errors_naming_provider_and_model(
    upstream: Upstream, ensemble_dir: Path, kind: str, behaviour: Behaviour, error: type, words: str
) -> None:
    upstream.script("m", behaviour)
    with pytest.raises(error) as info:
        await _call(upstream, ensemble_dir, kind=kind)
    assert str(info.value).startswith("lab:m: ")
    assert words in str(info.value)


def test_openrouter_style_400_for_a_bad_model_id_is_unknown_model() -> None:
    response = httpx2.Response(400, json={"error": {"message": "openai/gpt-9 is not a valid model ID", "code": 400}})
    error = error_for_status("openrouter", "openai/gpt-9", response)
    assert isinstance(error, UnknownModelError)
    assert str(error) == "openrouter:openai/gpt-9: HTTP 400: 400: openai/gpt-9 is not a valid model ID (is the model id right?)"


@pytest.mark.anyio
async def test_a_hanging_model_times_out_within_the_budget(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", hang=True)
    started = anyio.current_time()
    with pytest.raises(ProviderTimeoutError, match="no answer within"):
        await _call(upstream, ensemble_dir, timeout_s=0.5)
    assert anyio.current_time() - started < 3


@pytest.mark.anyio
async def test_unreachable_endpoint_is_an_upstream_error(ensemble_dir: Path) -> None:
    class Dead:
        url = "http://127.0.0.1:9"  # discard port: nothing listens

    reg = write_registry(ensemble_dir, lab=lab_toml(Dead.url, ["m"], None, None))
    async with FusionEngine(reg) as engine:
        with pytest.raises(UpstreamError, match="cannot reach http://127.0.0.1:9/v1/chat/completions"):
            await engine.call(reg.get("lab").drafters[0], ASK, timeout_s=2)


@pytest.mark.anyio
async def test_missing_key_names_the_variable_and_sends_nothing(
    upstream: Upstream, ensemble_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_KEY")
    with pytest.raises(MissingKeyError, match="set the environment variable LAB_KEY"):
        await _call(upstream, ensemble_dir)
    assert upstream.calls() == []


@pytest.mark.anyio
async def test_429_is_retried_after_retry_after(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="done", status=429, retry_after="0.3", fail_times=1)
    c = await _call(upstream, ensemble_dir, extra="max_retries = 2")
    assert c.text == "done" and c.attempts == 2
    first, second = upstream.calls("m")
    assert second.at - first.at >= 0.3


@pytest.mark.anyio
async def test_5xx_is_retried_with_backoff_until_it_answers(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="finally", status=503, fail_times=2)
    c = await _call(upstream, ensemble_dir, extra="max_retries = 3")
    assert c.text == "finally" and c.attempts == 3
    assert len(upstream.calls("m")) == 3


@pytest.mark.anyio
async def test_retries_stop_at_max_retries(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", status=500)
    with pytest.raises(UpstreamError):
        await _call(upstream, ensemble_dir, extra="max_retries = 1")
    assert len(upstream.calls("m")) == 2


@pytest.mark.anyio
async def test_no_retry_past_the_deadline(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", status=429, retry_after="30", fail_times=1)
    started = anyio.current_time()
    with pytest.raises(RateLimitedError):
        await _call(upstream, ensemble_dir, extra="max_retries = 3", timeout_s=2)
    assert anyio.current_time() - started < 10  # not the 30 s Retry-After
    assert len(upstream.calls("m")) == 1


@pytest.mark.anyio
async def test_client_errors_are_not_retried(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", status=401)
    with pytest.raises(AuthenticationError):
        await _call(upstream, ensemble_dir, extra="max_retries = 3")
    assert len(upstream.calls("m")) == 1


@pytest.mark.anyio
async def test_concurrency_limit_per_provider(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="x", delay=0.15)
    ens = _ensemble(upstream, ensemble_dir, extra="max_concurrency = 2")
    async with FusionEngine.from_settings() as engine:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(lambda: engine.call(ens.drafters[0], ASK, timeout_s=10))
    assert len(upstream.calls("m")) == 5
    assert upstream.max_in_flight == 2


# -- cost: upstream figure, price table, unknown -------------------------------------------------


@pytest.mark.anyio
async def test_cost_reported_by_the_upstream_wins(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="x", cost=0.00123)
    c = await _call(upstream, ensemble_dir)
    assert (c.cost_usd, c.cost_source) == (0.00123, "upstream")


@pytest.mark.anyio
async def test_cost_from_the_price_table(upstream: Upstream, ensemble_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('["lab:m"]\ninput = 2.0\noutput = 10.0\n')
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    upstream.script("m", text="x", input_tokens=1000, output_tokens=500)
    c = await _call(upstream, ensemble_dir)
    assert c.cost_source == "price_table"
    assert c.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)


@pytest.mark.anyio
async def test_cost_unknown_is_none_never_zero(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", text="x")
    c = await _call(upstream, ensemble_dir)
    assert c.cost_usd is None and c.cost_source == "unknown"


def test_a_broken_price_file_names_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusion_mcp.config.settings import Settings
    from fusion_mcp.errors import ConfigError

    prices = tmp_path / "p.toml"
    prices.write_text('["lab:m"]\ninput = -1\noutput = 1\n')
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    with pytest.raises(ConfigError, match=r"p\.toml \[lab:m\.input\]"):
        Settings.from_env().pricing.price_for("lab:m")


@pytest.mark.anyio
async def test_a_call_queued_behind_a_busy_slot_still_times_out_on_time(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("m", hang=True)
    ens = _ensemble(upstream, ensemble_dir, extra="max_concurrency = 1")
    async with FusionEngine.from_settings() as engine:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: engine.call(ens.drafters[0], ASK, timeout_s=5))  # holds the only slot
            assert await eventually_async(lambda: upstream.in_flight == 1)
            started = anyio.current_time()
            with pytest.raises(ProviderTimeoutError):
                await engine.call(ens.drafters[0], ASK, timeout_s=0.5)
            assert anyio.current_time() - started < 3.0  # its own 0.5 s, not the 5 s of the call ahead
            tg.cancel_scope.cancel()
    assert len(upstream.calls("m")) == 1  # the queued call never reached the upstream


@pytest.mark.anyio
async def test_structured_output_falls_back_per_model_to_the_llama_cpp_shape(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("old", text='{"A": 1}', rejects_json_schema=True)
    upstream.script("new", text='{"A": 2}')
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["old", "new"], None, None,
                                                    provider_extra="max_retries = 0\nstructured_output = true"))
    old, new = reg.get("lab").drafters
    asking = ASK.model_copy(update={"json_schema": {"type": "object"}})
    async with FusionEngine(reg) as engine:
        assert (await engine.call(old, asking, timeout_s=5)).text == '{"A": 1}'
        assert (await engine.call(old, asking, timeout_s=5)).text == '{"A": 1}'
        assert (await engine.call(new, asking, timeout_s=5)).text == '{"A": 2}'
    shapes = [(c.model, c.body["response_format"]["type"]) for c in upstream.calls()]
    # the old server's refusal is remembered for that model only
    assert shapes == [("old", "json_schema"), ("old", "json_object"), ("old", "json_object"), ("new", "json_schema")]
    assert upstream.calls("old")[1].body["response_format"]["schema"] == {"type": "object"}
