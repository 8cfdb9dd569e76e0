"""Two `fusion-mcp serve --store redis://...` replicas behind a real haproxy (round robin), on a real
redis-server: they behave as one server to a host, the provider limit holds across them, the call
cache is shared, and a run whose replica dies ends as failed once its lease lapses.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import LAB_KEY, lab_toml, review_json
from tests.services import (
    Service,
    fast_models,
    haproxy_requests,
    settle,
    start_haproxy,
    start_redis,
    start_replica,
)
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio
LIMIT = 3
LEASE_S = 3
EXTRA = f"max_retries = 0\nmax_concurrency = {LIMIT}"


class Cluster:
    def __init__(self, upstream: Upstream, folder: Path, env: dict[str, str], store: str, replicas: list[Service],
                 balancer: Service) -> None:
        self.upstream, self.folder, self.env, self.store = upstream, folder, env, store
        self.a, self.b = replicas
        self.balancer = balancer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    ensembles = folder / "ensembles"
    ensembles.mkdir()
    services: list[Service] = []
    with Upstream() as up:
        url = up.url
        (ensembles / "lab.toml").write_text(lab_toml(url, ["alpha", "beta"], deadline_s=60, provider_extra=EXTRA))
        (ensembles / "burst.toml").write_text(lab_toml(url, ["b1", "b2"], reviewer=None, synthesizer="bfuse",
                                                       deadline_s=120, min_drafts=2, provider_extra=EXTRA))
        (ensembles / "stall.toml").write_text(lab_toml(url, ["stall"], reviewer=None, deadline_s=120,
                                                       provider_extra=EXTRA))
        env = {"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(ensembles), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
               "FUSION_MCP_CACHE": str(folder / "cache.sqlite3"), "FUSION_MCP_LEASE_S": str(LEASE_S)}
        try:
            redis = start_redis(folder)
            services.append(redis)
            store = f"redis://127.0.0.1:{redis.port}/0"
            replicas = [start_replica(env, store, "--tool-timeout", "2", "--max-running", "250") for _ in range(2)]
            services += replicas
            balancer = start_haproxy(folder, replicas)
            services.append(balancer)
            yield Cluster(up, folder, env, store, replicas, balancer)
        finally:
            for service in reversed(services):
                service.stop()




async def read_run(client: Client, run_id: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(f"run://{run_id}")).contents[0].text)


async def test_a_run_started_through_one_replica_is_read_and_polled_through_the_other(cluster):
    up = cluster.upstream
    fast_models(up, ttft=0.6, tokens_per_s=30.0, output_tokens=20)  # each call ~1.2 s: a run of ~3.6 s
    async with Client(cluster.a.url + "/mcp") as on_a:
        first = await on_a.call_tool("fused_answer", {"question": "Capital of France, one?"})
    assert not first.is_error, first.content
    assert first.structured_content["status"] == "running"  # longer than the 2 s tool limit
    run_id = first.structured_content["run_id"]
    async with Client(cluster.b.url + "/mcp") as on_b:
        shown = await read_run(on_b, run_id)
        assert shown["status"] == "running" and shown["ensemble"] == "lab" and shown["kind"] == "fused_answer"
        out = await settle(on_b, await on_b.call_tool("get_run", {"run_id": run_id}))
        assert out["status"] == "done" and out["answer"] == "Paris is the capital." and out["run_id"] == run_id
        full = await read_run(on_b, run_id)
        assert full["answer"] == "Paris is the capital." and len(full["drafts"]) == 2
        again = await on_b.call_tool("fused_answer", {"question": "Capital of France, one?", "from_run": run_id})
        again_out = await settle(on_b, again)
        assert again_out["answer"] == "Paris is the capital."
    assert [len(up.calls(m)) for m in ("alpha", "beta")] == [1, 1]  # from_run reused the drafts


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_host_session_through_the_balancer_is_served_by_both_replicas(cluster, mode):
    fast_models(cluster.upstream)
    before = haproxy_requests(cluster.folder)
    async with Client(cluster.balancer.url + "/mcp", mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"fused_answer", "get_run"} <= names
        for i in range(3):
            out = await settle(client, await client.call_tool("fused_answer", {"question": f"Balanced {mode} {i}?"}))
            assert out["answer"] == "Paris is the capital."
            assert (await read_run(client, out["run_id"]))["answer"] == "Paris is the capital."
        unknown = await client.call_tool("get_run", {"run_id": "no-such-run"})
        assert unknown.is_error and "no replica sharing this server's store has it" in unknown.content[0].text
    after = haproxy_requests(cluster.folder)
    assert all(after[r] > before.get(r, 0) for r in ("r0", "r1")), (before, after)


async def test_a_burst_through_the_balancer_never_exceeds_the_shared_limit(cluster):
    up = cluster.upstream
    for model in ("b1", "b2", "bfuse"):
        up.script(model, text=f"{model} says yes.", delay=0.03)
    up.max_in_flight = 0
    before = haproxy_requests(cluster.folder)
    answers: list[str] = []

    async def client_burst(k: int) -> None:
        async with Client(cluster.balancer.url + "/mcp") as client:
            async def one(i: int) -> None:
                first = await client.call_tool("fused_answer", {"question": f"Burst question {k}-{i}?",
                                                                "ensemble": "burst"})
                answers.append((await settle(client, first))["answer"])

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)

    with anyio.fail_after(300):
        async with anyio.create_task_group() as tg:
            for k in range(10):
                tg.start_soon(client_burst, k)
    # min_drafts = 2: no draft is cut as a straggler while it waits for a slot (a cut call's hang-up
    # would reach the upstream after its slot is given back), so every answer is the synthesis.
    assert answers == ["bfuse says yes."] * 200, sorted(set(answers))
    assert [len(up.calls(m)) for m in ("b1", "b2", "bfuse")] == [200, 200, 200]
    # Each replica alone allows LIMIT calls: together they could reach twice that, and did not.
    assert up.max_in_flight == LIMIT, up.max_in_flight
    after = haproxy_requests(cluster.folder)
    assert all(after[r] - before.get(r, 0) >= 100 for r in ("r0", "r1")), (before, after)


async def test_a_second_replicas_identical_call_is_answered_from_the_shared_cache(cluster):
    """The drafts are the identical calls (review and synthesis prompts carry a fresh per-run delimiter,
    so they are new calls): the second replica pays for none of them."""
    up = cluster.upstream
    fast_models(up)
    args = {"question": "Which cache do replicas share?"}
    before = [len(up.calls(m)) for m in ("alpha", "beta")]
    async with Client(cluster.a.url + "/mcp") as on_a:
        first = await settle(on_a, await on_a.call_tool("fused_answer", args))
    drafted = [len(up.calls(m)) for m in ("alpha", "beta")]
    async with Client(cluster.b.url + "/mcp") as on_b:
        second = await settle(on_b, await on_b.call_tool("fused_answer", args))
        full = await read_run(on_b, second["run_id"])
    assert second["answer"] == first["answer"] == "Paris is the capital."
    assert drafted == [before[0] + 1, before[1] + 1]  # the first replica paid for its drafts
    assert [len(up.calls(m)) for m in ("alpha", "beta")] == drafted  # the second did not draft again
    assert [d["cached"] for d in full["drafts"]] == [True, True]
    assert all(d["status"] == "ok" for d in full["drafts"])


async def test_a_replica_killed_mid_run_leaves_a_run_that_fails_after_its_lease(cluster):
    cluster.upstream.script("stall", hang=True)
    doomed = start_replica(cluster.env, cluster.store, "--tool-timeout", "1")
    try:
        async with Client(doomed.url + "/mcp") as on_doomed:
            first = await on_doomed.call_tool("fused_answer", {"question": "Will this replica live?",
                                                               "ensemble": "stall"})
        assert first.structured_content["status"] == "running"
        run_id = first.structured_content["run_id"]
        doomed.kill()
        killed_at = anyio.current_time()
    finally:
        doomed.stop()
    async with Client(cluster.a.url + "/mcp") as on_a:
        result = None
        for _ in range(60):
            result = await on_a.call_tool("get_run", {"run_id": run_id, "wait_s": 5})
            if result.is_error or result.structured_content["status"] != "running":
                break
        assert result is not None and result.is_error, result
        text = result.content[0].text
        assert "lease lapsed" in text and "ask again" in text
        assert anyio.current_time() - killed_at < 60
        shown = await read_run(on_a, run_id)
        assert shown["status"] == "failed" and "lease lapsed" in shown["error"]


def rpc(base: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One JSON-RPC request to a stateless replica, as a 2025-11-25 client sends it; its result (or error)."""
    import httpx

    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json",
               "mcp-protocol-version": "2025-11-25"}
    reply = httpx.post(base + "/mcp", headers=headers, timeout=60,
                       json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert reply.status_code == 200, reply.text
    body = reply.text
    if reply.headers["content-type"].startswith("text/event-stream"):
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:") and line[5:].strip())
    message: dict[str, Any] = json.loads(body)
    return message


async def test_a_task_made_on_one_replica_is_polled_and_read_on_the_other(cluster):
    up = cluster.upstream
    pace = dict(ttft=0.6, tokens_per_s=30.0, output_tokens=20)  # a run of ~3.6 s
    for model, text in (("alpha", "Answer: Paris."), ("beta", "Answer: Lyon."),
                        ("judge", review_json({"A": (9, 9, 9), "B": (3, 3, 3)})), ("fuser", "Paris is the capital.")):
        up.script(model, text=text, **pace)
    init = rpc(cluster.a.url, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                             "clientInfo": {"name": "t", "version": "1"}})
    assert "tasks" in init["result"]["capabilities"]
    made = rpc(cluster.a.url, "tools/call", {"name": "fused_answer", "arguments": {"question": "Capital, task?"},
                                             "task": {"ttl": 60_000}})
    task_id = made["result"]["task"]["taskId"]
    status = rpc(cluster.b.url, "tasks/get", {"taskId": task_id})["result"]
    assert status["status"] == "working" and status["ttl"] == 60_000
    result = rpc(cluster.b.url, "tasks/result", {"taskId": task_id})["result"]  # waits for the run, on the other replica
    assert result["structuredContent"]["answer"] == "Paris is the capital."
    assert rpc(cluster.b.url, "tasks/get", {"taskId": task_id})["result"]["status"] == "completed"
