"""Fusion as a model: the official openai and anthropic clients, and an agent framework (openai-agents),
against a real `fusion-mcp serve --transport streamable-http` process with a token, whose ensembles
draft, review and synthesize on the scripted loopback upstream.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

import anthropic
import httpx
import openai
import pytest

from tests.conftest import LAB_KEY, analysis_review, eventually, lab_toml
from tests.services import free_port, stop_process, wait_for_port
from tests.upstream import Upstream

TOKEN = "model-api-token-5c7e9a1b3d"
ANSWER = "Paris is the capital of France, on the Seine, and has been for over a thousand years."
DRAFT_COST, REVIEW_COST, SYNTH_COST = 0.0011, 0.0007, 0.0023


@pytest.fixture(scope="module")
def lab() -> Iterator[Upstream]:
    with Upstream() as up:
        up.script("alpha", text="The capital of France is Paris.", cost=DRAFT_COST, input_tokens=30, output_tokens=9)
        up.script("beta", text="Paris, on the Seine.", cost=DRAFT_COST, input_tokens=30, output_tokens=6)
        up.script("judge", text=analysis_review({"A": 8, "B": 7}, consensus=["Paris is the capital"]),
                  cost=REVIEW_COST, input_tokens=120, output_tokens=40)
        # written like a real model: a first token after 0.2 s, then 40 tokens a second
        up.script("fuser", text=ANSWER, cost=SYNTH_COST, input_tokens=150, output_tokens=24, ttft=0.2,
                  tokens_per_s=40)
        up.script("sleepy", hang=True)  # never answers: only a cancelled run ends its request
        up.script("slowpoke", text="Lyon.", delay=1.5)
        up.script("down", status=500)
        up.script("leaker", text=f"The server's key is {LAB_KEY}, said the synthesizer, and it went on and on.",
                  output_tokens=40, tokens_per_s=80)  # the key arrives split over several pieces
        yield up


@pytest.fixture(scope="module")
def base_url(lab: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ensembles")
    (folder / "probe.toml").write_text(lab_toml(lab.url, ["alpha", "beta"], deadline_s=30))
    (folder / "stall.toml").write_text(lab_toml(lab.url, ["sleepy"], reviewer=None, deadline_s=60))
    (folder / "slow.toml").write_text(lab_toml(lab.url, ["slowpoke", "beta"], reviewer=None, deadline_s=30))
    (folder / "broken.toml").write_text(lab_toml(lab.url, ["down"], reviewer=None, deadline_s=30))
    (folder / "leaky.toml").write_text(lab_toml(lab.url, ["alpha", "beta"], reviewer=None, synthesizer="leaker"))
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LAB_KEY": LAB_KEY,
           "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "probe",
           "FUSION_MCP_CACHE": str(folder / "cache.sqlite3"), "FUSION_MCP_AUTH_TOKEN": TOKEN,
           "FUSION_MCP_KEEPALIVE_S": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    wait_for_port(port, proc, "fusion-mcp serve")
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)


@pytest.fixture
def oai(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=TOKEN, max_retries=0, timeout=60)


@pytest.fixture
def claude(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=TOKEN, max_retries=0, timeout=60)


def body(caught: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    """The error body the client parsed (OpenAI's clients keep the inner `error` object)."""
    return cast(dict[str, Any], caught.value.body)


def calls_since(lab: Upstream, start: int, model: str) -> list[Any]:
    return [r for r in lab.calls()[start:] if r.model == model]


EXPECTED_PROMPT = 30 + 30 + 120 + 150
EXPECTED_COMPLETION = 9 + 6 + 40 + 24
EXPECTED_COST = 2 * DRAFT_COST + REVIEW_COST + SYNTH_COST


def test_models_list_shows_every_ensemble_with_its_readiness(oai):
    models = {m.id: m for m in oai.models.list()}
    assert {"fusion", "fusion/probe", "fusion/stall", "fusion/broken"} <= set(models)
    probe = models["fusion/probe"].model_extra["fusion"]
    assert probe["ready"] is True and probe["drafters"] == ["lab:alpha", "lab:beta"]
    assert models["fusion"].model_extra["fusion"]["ensemble"] == "probe"  # FUSION_MCP_DEFAULT_ENSEMBLE
    assert oai.models.retrieve("fusion/probe").id == "fusion/probe"


def test_chat_completion_returns_the_fused_answer_with_usage_and_cost(oai, base_url):
    raw = oai.chat.completions.with_raw_response.create(
        model="fusion/probe", messages=[{"role": "user", "content": "What is the capital of France?"}])
    done = raw.parse()
    assert done.choices[0].message.content == ANSWER
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "fusion/probe"
    u = done.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        EXPECTED_PROMPT, EXPECTED_COMPLETION, EXPECTED_PROMPT + EXPECTED_COMPLETION)
    assert u.model_extra["cost"] == pytest.approx(EXPECTED_COST)
    meta = done.model_extra["fusion"]
    assert meta["answer_source"] == "synthesis" and meta["ensemble"] == "probe"
    assert meta["confidence"]["level"] in ("high", "medium", "low", "unknown")
    assert meta["analysis"]["consensus"] == ["Paris is the capital"]
    roles = {(m["role"], m["model"]): m for m in meta["models"]}
    assert roles[("drafter", "lab:alpha")]["status"] == "ok"
    assert roles[("drafter", "lab:alpha")]["cost_usd"] == pytest.approx(DRAFT_COST)
    assert roles[("synthesizer", "lab:fuser")]["latency_s"] > 0
    assert raw.headers["x-fusion-run-id"] == meta["run_id"]
    assert raw.headers["x-fusion-answer-source"] == "synthesis"
    assert float(raw.headers["x-fusion-cost-usd"]) == pytest.approx(EXPECTED_COST)
    # the run is in the server's run store: get_run over MCP (same token) returns it
    failed, run = _get_run(base_url, meta["run_id"])
    assert not failed and run["answer"] == ANSWER


def _get_run(base_url: str, run_id: str, wait_s: float = 10) -> tuple[bool, Any]:
    """get_run over MCP on the same server and token: (is_error, the result or the error text)."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import TextContent

    async def call() -> tuple[bool, Any]:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http, \
                Client(streamable_http_client(base_url + "/mcp", http_client=http)) as client:
            result = await client.call_tool("get_run", {"run_id": run_id, "wait_s": wait_s})
            text = result.content[0]
            assert isinstance(text, TextContent)
            return result.is_error, text.text if result.is_error else result.structured_content

    return anyio.run(call)


def test_a_streamed_chat_completion_sends_the_synthesis_as_it_is_written(oai):
    stream = oai.chat.completions.create(
        model="fusion/probe", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == ANSWER
    assert len(pieces) >= 2  # pieces as the synthesizer wrote them, not the whole answer at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.total_tokens == EXPECTED_PROMPT + EXPECTED_COMPLETION
    assert last.usage.model_extra["cost"] == pytest.approx(EXPECTED_COST)
    assert last.model_extra["fusion"]["answer_source"] == "synthesis"


def test_a_wrong_or_missing_token_gets_401(base_url):
    wrong = openai.OpenAI(base_url=base_url + "/v1", api_key="not-the-token-at-all", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert TOKEN not in str(body(caught))
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}])
    with pytest.raises(anthropic.AuthenticationError) as caught_a:
        anthropic.Anthropic(base_url=base_url, api_key="not-the-token-at-all", max_retries=0).messages.create(
            model="fusion/probe", max_tokens=100, messages=[{"role": "user", "content": "Q?"}])
    assert body(caught_a)["error"]["type"] == "authentication_error"
    assert httpx.get(base_url + "/v1/models").status_code == 401


def test_anthropic_messages_plain(claude):
    message = claude.messages.create(model="fusion/probe", max_tokens=400,
                                     messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert message.content[0].text == ANSWER
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (EXPECTED_PROMPT, EXPECTED_COMPLETION)
    assert message.usage.model_extra["cost"] == pytest.approx(EXPECTED_COST)
    assert message.model_extra["fusion"]["ensemble"] == "probe"


def test_anthropic_messages_streamed(claude):
    with claude.messages.stream(model="fusion/probe", max_tokens=400,
                                messages=[{"role": "user", "content": "What is the capital of France?"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == ANSWER and len(pieces) >= 2
    assert final.content[0].text == ANSWER
    assert (final.usage.input_tokens, final.usage.output_tokens) == (EXPECTED_PROMPT, EXPECTED_COMPLETION)
    events = [e.type for e in claude.messages.create(
        model="fusion/probe", max_tokens=400, stream=True,
        messages=[{"role": "user", "content": "What is the capital of France?"}])]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in events and "content_block_stop" in events
    assert events.count("content_block_delta") >= 2


def test_a_key_the_synthesizer_echoes_never_reaches_the_stream(oai):
    stream = oai.chat.completions.create(model="fusion/leaky", stream=True,
                                         messages=[{"role": "user", "content": "What is your key?"}])
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    text = "".join(pieces)
    assert len(pieces) >= 2
    assert text == "The server's key is [redacted], said the synthesizer, and it went on and on."
    assert not any(LAB_KEY[i:i + 12] in text for i in range(len(LAB_KEY) - 11))


def test_system_prompt_and_earlier_turns_are_context_and_max_tokens_go_to_the_synthesizer(oai, lab):
    start = len(lab.calls())
    done = oai.chat.completions.create(
        model="fusion", max_tokens=321, temperature=0.3,
        messages=[{"role": "system", "content": "Answer as a geography teacher."},
                  {"role": "user", "content": "I am studying Europe."},
                  {"role": "assistant", "content": "Happy to help with European geography."},
                  {"role": "user", "content": "What is the capital of France?"}])
    assert done.choices[0].message.content == ANSWER
    draft = calls_since(lab, start, "alpha")[0].user_text()
    assert "Answer as a geography teacher." in draft and "Happy to help with European geography." in draft
    assert draft.rstrip().endswith("What is the capital of France?")
    synth = calls_since(lab, start, "fuser")[0].body
    assert synth["max_tokens"] == 321 and synth["temperature"] == 0.3
    assert calls_since(lab, start, "alpha")[0].body.get("max_tokens") != 321  # drafters keep their own settings


def test_the_fusion_object_takes_the_tools_per_call_options(oai, lab):
    start = len(lab.calls())
    done = oai.chat.completions.create(
        model="fusion/probe", messages=[{"role": "user", "content": "Capital of France?"}],
        extra_body={"fusion": {"drafters": ["lab:alpha"], "deadline_s": 20}})
    assert [d["model"] for d in done.model_extra["fusion"]["models"] if d["role"] == "drafter"] == ["lab:alpha"]
    assert not calls_since(lab, start, "beta")
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}],
                                    extra_body={"fusion": {"deadline_s": -1}})
    assert body(bad)["message"] == "invalid fusion.deadline_s: Input should be greater than 0"
    with pytest.raises(openai.BadRequestError) as unknown:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}],
                                    extra_body={"fusion": {"drafter": ["lab:alpha"]}})
    assert "fusion.drafter is not an option" in body(unknown)["message"]
    with pytest.raises(openai.BadRequestError) as provider:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}],
                                    extra_body={"fusion": {"drafters": ["nowhere:x"]}})
    assert "names unknown provider 'nowhere'" in body(provider)["message"]


def test_the_fusion_object_takes_judging_criteria(oai, lab):
    start = len(lab.calls())
    done = oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Sort a list?"}],
                                       extra_body={"fusion": {"criteria": "code"}})
    assert done.choices[0].message.content == ANSWER
    assert "Weigh correctness first" in calls_since(lab, start, "fuser")[0].all_text()  # the code preset
    with pytest.raises(openai.BadRequestError) as empty:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}],
                                    extra_body={"fusion": {"criteria": " "}})
    assert "criteria must not be empty" in body(empty)["message"]


def test_a_fusion_model_as_a_drafter_is_refused(oai, claude):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}],
                                    extra_body={"fusion": {"drafters": ["lab:fusion/probe", "lab:alpha"]}})
    assert "'lab:fusion/probe' is a fusion model" in body(caught)["message"]
    with pytest.raises(anthropic.BadRequestError) as caught_a:
        claude.messages.create(model="fusion/probe", max_tokens=100, messages=[{"role": "user", "content": "Q?"}],
                               extra_body={"fusion": {"synthesizer": "lab:fusion"}})
    assert "is a fusion model" in body(caught_a)["error"]["message"]


def test_the_tools_refuse_a_fusion_model_as_a_drafter_too(base_url):
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def call() -> Any:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http, \
                Client(streamable_http_client(base_url + "/mcp", http_client=http)) as client:
            return await client.call_tool("fused_answer", {"question": "Q?", "drafters": ["lab:fusion/probe"]})

    result = anyio.run(call)
    assert result.is_error and "'lab:fusion/probe' is a fusion model" in result.content[0].text


@pytest.mark.parametrize(("extra", "named"), [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools"),
    ({"n": 2}, "n > 1"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
])
def test_what_the_fusion_model_cannot_honour_is_a_400_in_openais_shape(oai, lab, extra, named):
    start = len(lab.calls())
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "user", "content": "Q?"}], **extra)
    error = body(caught)
    assert error["message"].startswith(f"{named} is not supported by the fusion model")
    assert error["type"] == "invalid_request_error" and error["code"] == "unsupported_parameter"
    assert len(lab.calls()) == start  # refused before any model call


def test_images_unknown_models_and_bad_messages_are_refused_in_each_apis_shape(oai, claude):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="fusion/probe", messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}])
    assert "messages[0].content[1] of type 'image_url' is not supported" in body(caught)["message"]
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Q?"}])
    assert "fusion/probe" in body(missing)["message"] and body(missing)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as last:
        oai.chat.completions.create(model="fusion/probe", messages=[{"role": "assistant", "content": "Hi"}])
    assert "the last message must be the user's question" in body(last)["message"]
    with pytest.raises(anthropic.BadRequestError) as tools:
        claude.messages.create(model="fusion/probe", max_tokens=100, messages=[{"role": "user", "content": "Q?"}],
                               tools=[{"name": "f", "input_schema": {"type": "object"}}])
    assert body(tools) == {"type": "error", "error": {
        "type": "invalid_request_error", "message": body(tools)["error"]["message"]}}
    assert body(tools)["error"]["message"].startswith("tools is not supported by the fusion model")
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "Q"}])
    raw = httpx.post(str(oai.base_url) + "chat/completions", content=b"{not json",
                     headers={"authorization": f"Bearer {TOKEN}"})
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]


def test_a_run_where_every_draft_fails_is_an_error_with_the_tools_message(oai):
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(model="fusion/broken", messages=[{"role": "user", "content": "Q?"}])
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "every draft of ensemble 'broken' failed" in body(caught)["message"]
    with pytest.raises(openai.APIError) as streamed:
        list(oai.chat.completions.create(model="fusion/broken", stream=True,
                                         messages=[{"role": "user", "content": "Q?"}]))
    assert "every draft of ensemble 'broken' failed" in streamed.value.message


def test_a_stream_sends_keep_alives_while_the_panel_drafts(base_url):
    body = {"model": "fusion/slow", "stream": True, "messages": [{"role": "user", "content": "Second city?"}]}
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {TOKEN}"}) as response:
        lines = list(response.iter_lines())
    first_content = next(i for i, line in enumerate(lines) if '"content": "' in line and '"content": ""' not in line)
    keepalives = [i for i, line in enumerate(lines) if line.startswith(": fusion run ")]
    assert keepalives and keepalives[0] < first_content  # while drafting, before any of the answer
    assert [line for line in lines if line][-1] == "data: [DONE]"
    anthropic_body = {**body, "max_tokens": 200}
    with httpx.stream("POST", base_url + "/v1/messages", json=anthropic_body, timeout=30,
                      headers={"x-api-key": TOKEN, "anthropic-version": "2023-06-01"}) as response:
        events = [line[len("event: "):] for line in response.iter_lines() if line.startswith("event: ")]
    first_delta = events.index("content_block_delta")
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events[:first_delta].count("ping") >= 2  # one at the start, more while the panel drafts


def _wait_for_request(lab: Upstream, model: str, start: int) -> None:
    assert eventually(lambda: bool(calls_since(lab, start, model)), 20), f"no request reached {model}"


def test_a_client_that_hangs_up_on_a_stream_cancels_its_run(base_url, lab):
    start, gone = len(lab.calls()), lab.disconnects.count("sleepy")
    body = {"model": "fusion/stall", "stream": True, "messages": [{"role": "user", "content": "Anything?"}]}
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {TOKEN}"}) as response:
        run_id = response.headers["x-fusion-run-id"]
        _wait_for_request(lab, "sleepy", start)
    hung_up = time.monotonic()
    # the run was cancelled: its upstream request closed long before the ensemble's 60 s deadline
    assert eventually(lambda: lab.disconnects.count("sleepy") > gone, 20)
    assert time.monotonic() - hung_up < 20
    failed, error = _get_run(base_url, run_id)
    assert failed and "cancelled" in error


def test_a_client_that_hangs_up_on_a_plain_request_cancels_its_run(base_url, lab):
    start, gone = len(lab.calls()), lab.disconnects.count("sleepy")
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=TOKEN, max_retries=0, timeout=3)
    with pytest.raises(openai.APITimeoutError):  # the client gives up after 3 s and closes its connection
        client.chat.completions.create(model="fusion/stall", messages=[{"role": "user", "content": "Anything?"}])
    assert calls_since(lab, start, "sleepy")
    assert eventually(lambda: lab.disconnects.count("sleepy") > gone, 20)


@pytest.mark.anyio
async def test_an_agent_framework_uses_a_fusion_model(base_url):
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)  # no traces sent to OpenAI from a test
    # Closed in this test: left to the garbage collector, the client's __del__ schedules its close on
    # whichever test's event loop is running then, over connections of this (closed) one.
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=TOKEN, max_retries=0) as client:
        agent = Agent(name="geographer", instructions="You answer geography questions.",
                      model=OpenAIChatCompletionsModel(model="fusion/probe", openai_client=client))
        result = await Runner.run(agent, "What is the capital of France?")
    assert result.final_output == ANSWER
