"""The model API on replicas sharing a real redis-server: a run asked for through `/v1/chat/completions`
or `/v1/messages` on one replica is in the shared run store, so `get_run` on the other returns it."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import LAB_KEY, lab_toml
from tests.services import Service, start_redis, start_replica
from tests.upstream import Upstream

TOKEN = "replica-api-token-8d2f4b6a0c"
ANSWER = "Paris, on both banks of the Seine."


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    folder: Path = tmp_path_factory.mktemp("api-replicas")
    services: list[Service] = []
    with Upstream() as up:
        up.script("alpha", text="Paris.", cost=0.001)
        up.script("beta", text="It is Paris.", cost=0.001)
        up.script("fuser", text=ANSWER, cost=0.002, tokens_per_s=50, output_tokens=10)
        (folder / "probe.toml").write_text(lab_toml(up.url, ["alpha", "beta"], reviewer=None, deadline_s=30))
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "probe",
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3"), "FUSION_MCP_AUTH_TOKEN": TOKEN}
        try:
            redis = start_redis(folder)
            services.append(redis)
            store = f"redis://127.0.0.1:{redis.port}/0"
            a, b = start_replica(env, store), start_replica(env, store)
            services += [a, b]
            yield a, b
        finally:
            for service in reversed(services):
                service.stop()


def get_run(replica: Service, run_id: str) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http, \
                Client(streamable_http_client(replica.url + "/mcp", http_client=http)) as client:
            result = await client.call_tool("get_run", {"run_id": run_id, "wait_s": 10})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            return result.structured_content

    return anyio.run(call)


def test_a_chat_completion_on_one_replica_is_a_run_the_other_returns(replicas):
    a, b = replicas
    done = openai.OpenAI(base_url=a.url + "/v1", api_key=TOKEN, max_retries=0).chat.completions.create(
        model="fusion/probe", messages=[{"role": "user", "content": "Capital of France?"}])
    assert done.choices[0].message.content == ANSWER
    fusion: Any = done.model_extra["fusion"] if done.model_extra else {}
    cost: Any = done.usage.model_extra["cost"] if done.usage and done.usage.model_extra else None
    run = get_run(b, fusion["run_id"])
    assert run["answer"] == ANSWER and run["ensemble"] == "probe"
    assert run["usage"]["cost_usd"] == pytest.approx(cost)


def test_a_streamed_message_on_one_replica_is_a_run_the_other_returns(replicas):
    a, b = replicas
    client = anthropic.Anthropic(base_url=b.url, api_key=TOKEN, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="fusion", max_tokens=500, stream=True, messages=[{"role": "user", "content": "Capital of France?"}])
    deltas = [e.delta for e in raw.parse() if e.type == "content_block_delta"]
    text = "".join(d.text for d in deltas if d.type == "text_delta")
    assert text == ANSWER
    assert get_run(a, raw.headers["x-fusion-run-id"])["answer"] == ANSWER
