"""MCP tasks (2025-11-25) over stdio with a real server process: a task-augmented tools/call gets a task at
once, the task is listed, polled to `completed`, and its result is the tool's; tasks can be cancelled;
plain calls and clients of other protocol versions keep working as before."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_KEY, eventually, lab_toml, review_json
from tests.jsonrpc_stdio import RpcError, StdioPeer
from tests.upstream import Upstream


def paced(upstream: Upstream, seconds: float) -> None:
    """Each stage (drafts, review, synthesis) takes about `seconds`, like a frontier model."""
    pace: dict[str, Any] = dict(ttft=seconds * 0.5, tokens_per_s=40 / seconds, output_tokens=20)
    upstream.script("alpha", text="Answer: Paris.", **pace)
    upstream.script("beta", text="Answer: Lyon.", **pace)
    upstream.script("judge", text=review_json({"A": (9, 9, 9), "B": (3, 3, 3)}), **pace)
    upstream.script("fuser", text="Paris is the capital.", **pace)


@pytest.fixture
def peer(upstream: Upstream, tmp_path: Path) -> Iterator[StdioPeer]:
    folder = tmp_path / "ensembles"
    folder.mkdir()
    (folder / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"], deadline_s=60))
    server = StdioPeer({"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder), "FUSION_MCP_DEFAULT_ENSEMBLE": "lab",
                        "FUSION_MCP_CACHE": str(tmp_path / "cache.sqlite3"), "FUSION_MCP_TOOL_TIMEOUT": "30"})
    yield server
    server.close()


def test_a_task_is_created_at_once_listed_polled_to_completed_and_gives_the_fused_answer(
        upstream: Upstream, peer: StdioPeer) -> None:
    paced(upstream, 1.0)
    init = peer.initialize("2025-11-25", {"tasks": {"list": {}, "cancel": {}}})
    assert init["capabilities"]["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    tools = {t["name"]: t for t in peer.request("tools/list")["tools"]}
    assert tools["fused_answer"]["execution"] == {"taskSupport": "optional"}
    assert tools["compare_drafts"]["execution"] == {"taskSupport": "optional"}
    assert "execution" not in tools["get_run"] and "execution" not in tools["list_ensembles"]

    started = time.monotonic()
    created = peer.request("tools/call", {"name": "fused_answer", "arguments": {"question": "Capital of France?"},
                                          "task": {"ttl": 600_000}})
    assert time.monotonic() - started < 2.5  # at once, not after the ~3 s run
    task = created["task"]
    assert task["status"] == "working" and task["ttl"] == 600_000 and task["pollInterval"] > 0
    assert task["createdAt"].endswith("Z")
    listed = peer.request("tasks/list")["tasks"]
    assert [t["taskId"] for t in listed] == [task["taskId"]]

    statuses = []
    while True:
        got = peer.request("tasks/get", {"taskId": task["taskId"]})
        statuses.append(got["status"])
        if got["status"] != "working":
            break
        assert len(statuses) < 200
        time.sleep(0.2)
    assert statuses[0] == "working" and statuses[-1] == "completed"

    result = peer.request("tasks/result", {"taskId": task["taskId"]})
    assert not result.get("isError")
    out = result["structuredContent"]
    assert out["status"] == "done" and out["answer"] == "Paris is the capital." and out["run_id"] == task["taskId"]
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    assert eventually(lambda: any(n["method"] == "notifications/tasks/status" and n["params"]["status"] == "completed"
                                  for n in peer.notifications))
    # nothing ran twice, and the plain (non-task) call still answers inline
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "judge", "fuser")] == [1, 1, 1, 1]
    plain = peer.request("tools/call", {"name": "fused_answer", "arguments": {"question": "And of Italy?"}})
    assert plain["structuredContent"]["status"] == "done" and "task" not in plain

    # tools that do not run as tasks, unknown tasks, and bad arguments are JSON-RPC errors
    with pytest.raises(RpcError) as forbidden:
        peer.request("tools/call", {"name": "list_ensembles", "arguments": {}, "task": {}})
    assert forbidden.value.code == -32601
    with pytest.raises(RpcError) as unknown:
        peer.request("tasks/get", {"taskId": "nope"})
    assert unknown.value.code == -32602 and "unknown task id 'nope'" in unknown.value.message
    with pytest.raises(RpcError) as bad:
        peer.request("tools/call", {"name": "fused_answer", "arguments": {"question": "Q?", "ensemble": "nope"},
                                    "task": {}})
    assert bad.value.code == -32602 and "nope" in bad.value.message
    log = peer.close()
    assert "Traceback" not in log


def test_a_task_can_be_cancelled_and_other_protocol_versions_run_inline(upstream: Upstream, peer: StdioPeer) -> None:
    paced(upstream, 2.0)
    peer.initialize("2025-11-25", {"tasks": {"cancel": {}}})
    task = peer.request("tools/call", {"name": "compare_drafts", "arguments": {"question": "Capital?"},
                                       "task": {}})["task"]
    cancelled = peer.request("tasks/cancel", {"taskId": task["taskId"]})
    assert cancelled["status"] == "cancelled"
    assert peer.request("tasks/get", {"taskId": task["taskId"]})["status"] == "cancelled"
    result = peer.request("tasks/result", {"taskId": task["taskId"]})
    assert result["isError"] and "cancelled" in result["content"][0]["text"]
    with pytest.raises(RpcError) as again:
        peer.request("tasks/cancel", {"taskId": task["taskId"]})
    assert again.value.code == -32602 and "already cancelled" in again.value.message
    time.sleep(1.0)
    assert upstream.calls("judge") == []  # the run stopped at its drafts
    peer.close()


def test_a_client_of_an_earlier_version_sees_no_tasks(upstream: Upstream, peer: StdioPeer) -> None:
    paced(upstream, 0.2)
    init = peer.initialize("2025-06-18")
    assert "tasks" not in init["capabilities"]
    assert all("execution" not in t for t in peer.request("tools/list")["tools"])
    out = peer.request("tools/call", {"name": "fused_answer", "arguments": {"question": "Capital?"}})
    assert out["structuredContent"]["answer"] == "Paris is the capital."
    peer.close()
