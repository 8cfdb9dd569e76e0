"""Protocol hygiene over stdio with a real server process: real prompts, JSON-RPC errors with the right
code and one log line (no traceback), and argument completion for ensembles and models."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LAB_KEY, lab_toml
from tests.jsonrpc_stdio import RpcError, StdioPeer
from tests.upstream import Upstream


@pytest.fixture
def peer(upstream: Upstream, tmp_path: Path) -> Iterator[StdioPeer]:
    folder = tmp_path / "ensembles"
    folder.mkdir()
    (folder / "lab.toml").write_text(lab_toml(upstream.url, ["alpha", "beta"]))
    server = StdioPeer({"LAB_KEY": LAB_KEY, "FUSION_MCP_ENSEMBLES": str(folder),
                        "FUSION_MCP_CACHE": str(tmp_path / "cache.sqlite3")})
    yield server
    server.close()


def test_prompts_errors_and_completion(peer: StdioPeer) -> None:
    init = peer.initialize("2025-11-25")
    assert "prompts" in init["capabilities"] and "completions" in init["capabilities"]
    prompts = {p["name"]: p for p in peer.request("prompts/list")["prompts"]}
    assert set(prompts) == {"fuse", "compare"}
    assert prompts["fuse"]["title"] == "Fuse this question"
    assert [(a["name"], a.get("required", False)) for a in prompts["compare"]["arguments"]] == [
        ("question", True), ("ensemble", False), ("reviewer", False)]
    got = peer.request("prompts/get", {"name": "compare", "arguments": {"question": "Is 2^61-1 prime?",
                                                                        "ensemble": "lab"}})
    text = got["messages"][0]["content"]["text"]
    assert got["messages"][0]["role"] == "user" and "compare_drafts" in text and "'lab'" in text
    assert text.endswith("Question: Is 2^61-1 prime?") and "get_run" in text

    with pytest.raises(RpcError) as unknown:
        peer.request("prompts/get", {"name": "nope"})
    assert unknown.value.code == -32602 and unknown.value.message == "unknown prompt 'nope'; the prompts are: fuse, compare"
    with pytest.raises(RpcError) as missing:
        peer.request("prompts/get", {"name": "fuse", "arguments": {}})
    assert missing.value.code == -32602 and "needs question" in missing.value.message
    with pytest.raises(RpcError) as no_method:
        peer.request("no/such/method")
    assert no_method.value.code == -32601

    def complete(ref: dict[str, str], name: str, value: str) -> list[str]:
        done = peer.request("completion/complete", {"ref": ref, "argument": {"name": name, "value": value}})
        return done["completion"]["values"]

    assert complete({"type": "ref/prompt", "name": "fuse"}, "ensemble", "fr") == ["frontier-duo", "frontier-trio"]
    assert complete({"type": "ref/resource", "uri": "ensemble://{name}"}, "name", "la") == ["lab"]
    assert complete({"type": "ref/prompt", "name": "compare"}, "reviewer", "lab:") == ["lab:alpha", "lab:beta",
                                                                                      "lab:fuser", "lab:judge"]
    assert complete({"type": "ref/prompt", "name": "fuse"}, "question", "x") == []
    log = peer.close()
    assert "Traceback" not in log
    assert log.count("unknown prompt 'nope'") == 1 and log.count("missing question") == 1
