"""The MCP tools and resources through the real protocol, in memory, in both protocol eras.

`legacy` is the initialize handshake that Claude Desktop speaks; `auto` negotiates the current
(stateless) protocol with an in-process server.
"""

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError

from fusion_mcp.config.cost_model import reference_question
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.fusion.estimate import estimate_run
from fusion_mcp.server.app import create_server
from tests.conftest import LAB_KEY, env_pricing, lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio

MODES = ["legacy", "auto"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def lab_server(upstream: Upstream, folder: Path, **ensembles: str) -> Any:
    files = ensembles or {"lab": lab_toml(upstream.url, ["alpha", "beta"])}
    return create_server(write_registry(folder, **files))


def script_happy(upstream: Upstream) -> None:
    upstream.script("alpha", text="Paris is the capital of France.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")


def error_text(result: Any) -> str:
    assert result.is_error, result
    return result.content[0].text


async def test_tools_with_lean_schemas_and_honest_annotations(upstream, ensemble_dir, mode):
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        if mode == "auto":
            assert client.protocol_version >= "2026"
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"fused_answer", "compare_drafts", "get_run", "list_ensembles", "list_models"}
    assert tools["get_run"].input_schema["required"] == ["run_id"]
    assert tools["get_run"].annotations.read_only_hint is True and tools["get_run"].annotations.open_world_hint is False
    for name in ("fused_answer", "compare_drafts"):
        t = tools[name]
        assert t.annotations.read_only_hint is True and t.annotations.open_world_hint is True
        assert "ctx" not in t.input_schema["properties"]
        # when to call it, and that the models see nothing of the conversation
        assert "do not see this conversation" in t.description
        assert "max_cost_usd" in t.description and "provider:model-id" in t.description
    assert tools["compare_drafts"].input_schema["required"] == ["question"]
    assert "required" not in tools["fused_answer"].input_schema  # from_run needs no question
    assert "not for quick lookups" in tools["fused_answer"].description
    # the ensembles that exist, and whether each is ready, as of start-up
    assert "lab (ready" in tools["fused_answer"].description
    assert "budget-trio (needs OPENROUTER_API_KEY" in tools["fused_answer"].description
    assert tools["list_ensembles"].annotations.read_only_hint is True
    assert set(tools["fused_answer"].input_schema["properties"]) == {
        "question", "ensemble", "context", "deadline_s", "include_drafts", "from_run", "drafters", "reviewer",
        "synthesizer", "max_cost_usd", "criteria"}
    assert {"deadline_s", "drafters", "reviewer", "max_cost_usd"} <= set(tools["compare_drafts"].input_schema["properties"])
    props = tools["fused_answer"].input_schema["properties"]
    assert props["deadline_s"]["title"] == "Deadline (seconds)" and props["max_cost_usd"]["title"] == "Spending cap (USD)"
    assert props["reviewer"]["type"] == ["string", "null"] and "default" not in props["reviewer"]
    assert "answer" in tools["fused_answer"].output_schema["properties"]
    assert "analysis" in tools["compare_drafts"].output_schema["properties"]
    assert "ensembles" in tools["list_ensembles"].output_schema["properties"]
    assert "models" in tools["list_models"].output_schema["properties"]
    listed = json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.values()])
    assert '"title": "fused_answerArguments"' not in listed and "Deadline S" not in listed
    for t in tools.values():  # what a host model reads on every turn: descriptions and input schemas
        assert len(t.description or "") + len(json.dumps(t.input_schema)) < 3000, t.name
    # the whole tools/list, output schemas included (issue 19 added criteria, notes, risks: ~16.1k)
    assert len(listed) < 16_500


async def test_fused_answer_with_provenance_and_progress(upstream, ensemble_dir, mode):
    script_happy(upstream)
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        result = await client.call_tool("fused_answer", {"question": "Capital of France?", "ensemble": "lab"},
                                        progress_callback=on_progress)
    assert not result.is_error
    out = result.structured_content
    assert out["answer"] == "Paris." and out["answer_source"] == "synthesis"
    weights = {d["model"]: d["weight"] for d in out["drafts"]}
    assert weights["lab:alpha"] > weights["lab:beta"]
    assert all(d["status"] == "ok" and d["text"] is None for d in out["drafts"])
    assert out["review"]["status"] == "ok" and out["synthesis"]["model"] == "lab:fuser"
    assert out["usage"]["input_tokens"] > 0 and out["degraded"] is False
    assert json.loads(result.content[0].text)["answer"] == "Paris."  # the text block, for hosts without structure
    assert [p[0] for p in updates] == [1, 2, 3, 4] and {p[1] for p in updates} == {4}
    messages = " | ".join(p[2] or "" for p in updates)
    assert "lab:alpha" in messages and "review: ok" in messages and "synthesis: ok" in messages


async def test_include_drafts_adds_the_texts(upstream, ensemble_dir, mode):
    script_happy(upstream)
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        result = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab",
                                                         "include_drafts": True})
    texts = {d["model"]: d["text"] for d in result.structured_content["drafts"]}
    assert texts == {"lab:alpha": "Paris is the capital of France.", "lab:beta": "It is Lyon."}


async def test_compare_drafts_then_fuse_from_run_without_redrafting(upstream, ensemble_dir, mode):
    script_happy(upstream)
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        compared = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})
        assert not compared.is_error
        cmp = compared.structured_content
        by_model = {d["model"]: d for d in cmp["drafts"]}
        assert by_model["lab:alpha"]["text"] == "Paris is the capital of France."
        assert by_model["lab:alpha"]["accuracy"] == 9 and by_model["lab:beta"]["accuracy"] == 2
        assert by_model["lab:alpha"]["reason"].startswith("reason ")
        assert cmp["best"] == by_model["lab:alpha"]["label"]
        assert 0 <= cmp["agreement"] <= 1 and cmp["most_agreed"] in ("A", "B")
        assert upstream.calls("fuser") == []  # compare only: no synthesis

        fused = await client.call_tool("fused_answer", {"question": "Capital?", "from_run": cmp["run_id"]})
    assert not fused.is_error
    assert fused.structured_content["answer"] == "Paris."
    assert len(upstream.calls("alpha")) == len(upstream.calls("beta")) == 1  # drafters not called again
    assert len(upstream.calls("judge")) == 1 and len(upstream.calls("fuser")) == 1


async def test_list_ensembles_readiness_models_and_cost(upstream, ensemble_dir, tmp_path, monkeypatch, mode):
    prices = tmp_path / "prices.toml"
    prices.write_text('["lab:alpha"]\ninput = 1.0\noutput = 2.0\n["lab:judge"]\ninput = 3.0\noutput = 4.0\n')
    monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
    keyed = lab_toml(upstream.url, ["alpha", "alpha"], reviewer="judge", synthesizer="judge").replace(
        'api_key_env = "LAB_KEY"', 'api_key_env = "OTHER_LAB_KEY"')
    server = lab_server(upstream, ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]), keyed=keyed)
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("list_ensembles", {})
    out = result.structured_content
    by_name = {e["name"]: e for e in out["ensembles"]}
    assert {"lab", "keyed", "local", "budget-trio"} <= set(by_name)
    lab, other = by_name["lab"], by_name["keyed"]
    assert lab["ready"] is True and lab["missing_keys"] == []
    assert other["ready"] is False and other["missing_keys"] == ["OTHER_LAB_KEY"]
    assert by_name["budget-trio"]["missing_keys"] == ["OPENROUTER_API_KEY"]
    assert [(m["role"], m["model"]) for m in lab["models"]] == [
        ("drafter", "lab:alpha"), ("drafter", "lab:beta"), ("reviewer", "lab:judge"), ("synthesizer", "lab:fuser")]
    assert lab["deadline_s"] == 10
    assert lab["estimated_cost_usd"] is None  # lab:beta and lab:fuser have no price
    # The spending cap's bound for the reference question: what max_cost_usd would let it run.
    keyed_ensemble = EnsembleRegistry.load([ensemble_dir]).get("keyed")
    expected = estimate_run(keyed_ensemble, reference_question(), None, env_pricing()).total_usd
    assert expected > 0 and other["estimated_cost_usd"] == pytest.approx(expected)
    assert "about 500 tokens" in out["cost_assumption"] and "max_cost_usd" in out["cost_assumption"]
    assert by_name["local"]["estimated_cost_usd"] == 0


async def test_errors_are_tool_errors_and_the_server_keeps_serving(upstream, ensemble_dir, monkeypatch, mode):
    script_happy(upstream)
    upstream.script("down", status=500, echo_auth=True)  # careless upstreams quote the key back
    upstream.script("locked", status=401, echo_auth=True)
    server = lab_server(
        upstream, ensemble_dir,
        lab=lab_toml(upstream.url, ["alpha", "beta"]),
        dead=lab_toml(upstream.url, ["down", "locked"]),
        keyed=lab_toml(upstream.url, ["alpha"]).replace('api_key_env = "LAB_KEY"', 'api_key_env = "OTHER_LAB_KEY"'),
    )
    async with Client(server, mode=mode) as client:
        async def ok() -> None:
            again = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
            assert not again.is_error and again.structured_content["answer"] == "Paris."

        text = error_text(await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "nope"}))
        assert "unknown ensemble 'nope'" in text and "lab" in text and "budget-trio" in text
        await ok()

        text = error_text(await client.call_tool("compare_drafts", {"question": "Q?", "ensemble": "keyed"}))
        assert "OTHER_LAB_KEY" in text and "env" in text
        await ok()

        text = error_text(await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "dead"}))
        assert "lab:down" in text and "lab:locked" in text and "500" in text and "auth" in text
        assert "for credentials" in text and "[redacted]" in text and LAB_KEY not in text
        await ok()

        text = error_text(await client.call_tool("fused_answer", {"question": ""}))
        assert "question" in text
        text = error_text(await client.call_tool("fused_answer", {"question": "Q?", "deadline_s": -1}))
        assert "deadline_s" in text
        text = error_text(await client.call_tool("fused_answer", {"question": "Q?", "from_run": "feedbeef"}))
        assert "unknown run id 'feedbeef'" in text and "compare_drafts" in text
        await ok()


async def test_from_run_refuses_a_different_question(upstream, ensemble_dir, mode):
    script_happy(upstream)
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        cmp = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})
        run_id = cmp.structured_content["run_id"]
        text = error_text(await client.call_tool("fused_answer", {"question": "Other?", "from_run": run_id}))
    assert "different question" in text and "'Capital?'" in text


async def test_from_run_refuses_a_new_context(upstream, ensemble_dir, mode):
    script_happy(upstream)
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        cmp = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})
        run_id = cmp.structured_content["run_id"]
        text = error_text(await client.call_tool(
            "fused_answer", {"question": "Capital?", "from_run": run_id, "context": "We mean Texas."}))
    assert "drafted with no context" in text and "omit context" in text


async def test_missing_key_of_the_default_ensemble_names_the_variable(upstream, ensemble_dir, monkeypatch, mode):
    monkeypatch.delenv("LAB_KEY")
    monkeypatch.setenv("FUSION_MCP_DEFAULT_ENSEMBLE", "lab")
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        text = error_text(await client.call_tool("fused_answer", {"question": "Q?"}))
    assert "'lab' needs LAB_KEY" in text
    assert upstream.calls() == []


async def test_a_hanging_model_does_not_hold_the_call_past_its_deadline(upstream, ensemble_dir, mode):
    script_happy(upstream)
    upstream.script("beta", hang=True)
    toml = lab_toml(upstream.url, ["alpha", "beta"], min_drafts=1, deadline_s=60)
    async with Client(lab_server(upstream, ensemble_dir, lab=toml), mode=mode) as client:
        started = anyio.current_time()
        with anyio.fail_after(30):  # a safety net for the suite
            result = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab",
                                                             "deadline_s": 2})
        assert anyio.current_time() - started < 2 + 8  # the 2 s deadline, not the hanging model
    out = result.structured_content
    status = {d["model"]: d["status"] for d in out["drafts"]}
    assert status == {"lab:alpha": "ok", "lab:beta": "timeout"}
    assert out["answer"] == "Paris is the capital of France." and out["degraded"] is True
    assert any("lab:beta" in r for r in out["degraded_reasons"])
    await _until(lambda: "beta" in upstream.disconnects and upstream.in_flight == 0)


async def test_cancelling_a_call_drops_its_upstream_requests(upstream, ensemble_dir, mode):
    script_happy(upstream)
    upstream.script("alpha", hang=True)
    upstream.script("beta", hang=True)
    toml = lab_toml(upstream.url, ["alpha", "beta"], deadline_s=60)
    async with Client(lab_server(upstream, ensemble_dir, lab=toml), mode=mode) as client:
        with pytest.raises(MCPError, match="(?i)timed out"):
            # The client's read timeout cancels the request on the server.
            await client.call_tool("fused_answer", {"question": "Q?", "ensemble": "lab"}, read_timeout_seconds=1)
        await _until(lambda: sorted(upstream.disconnects) == ["alpha", "beta"] and upstream.in_flight == 0)
        assert len(upstream.calls("alpha")) == 1  # dropped, not retried
        listed = await client.call_tool("list_ensembles", {})
        assert not listed.is_error


async def test_resources_show_ensembles_and_runs(upstream, ensemble_dir, mode):
    script_happy(upstream)
    async with Client(lab_server(upstream, ensemble_dir), mode=mode) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"ensemble://lab", "ensemble://local"} <= uris
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"ensemble://{name}", "run://{run_id}", "usage://{user}"}

        definition = (await client.read_resource("ensemble://lab")).contents[0]
        assert 'model = "lab:alpha"' in definition.text and definition.mime_type == "application/toml"

        fused = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
        run_id = fused.structured_content["run_id"]
        run = json.loads((await client.read_resource(f"run://{run_id}")).contents[0].text)
        assert run["run_id"] == run_id and run["answer"] == "Paris."
        assert {d["text"] for d in run["drafts"]} == {"Paris is the capital of France.", "It is Lyon."}
        assert run["totals"]["input_tokens"] > 0 and run["review"]["model"] == "lab:judge"

        with pytest.raises(MCPError, match="unknown run id 'nope'"):
            await client.read_resource("run://nope")
        with pytest.raises(MCPError, match="unknown ensemble 'nope'"):
            await client.read_resource("ensemble://nope")


async def test_the_run_store_is_bounded(upstream, ensemble_dir):
    script_happy(upstream)
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha"])), max_runs=2)
    async with Client(server) as client:
        ids = []
        for _ in range(3):
            r = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab"})
            ids.append(r.structured_content["run_id"])
        with pytest.raises(MCPError, match="last 2 runs"):
            await client.read_resource(f"run://{ids[0]}")
        assert (await client.read_resource(f"run://{ids[2]}")).contents


async def _until(condition: Any, limit_s: float = 10) -> None:
    """Wait for the upstream to notice (it polls its sockets); fails the test after limit_s."""
    with anyio.fail_after(limit_s):
        while not condition():
            await anyio.sleep(0.05)


async def test_from_run_needs_only_the_synthesizers_key(upstream, ensemble_dir, monkeypatch, mode):
    script_happy(upstream)
    monkeypatch.setenv("FUSER_KEY", "fuser-key-123456")
    toml = lab_toml(upstream.url, ["alpha", "beta"], synthesizer=None) + (
        f'\n[providers.fuse]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\napi_key_env = "FUSER_KEY"\n'
        '\n[synthesizer]\nmodel = "fuse:fuser"\n'
    )
    async with Client(lab_server(upstream, ensemble_dir, lab=toml), mode=mode) as client:
        cmp = await client.call_tool("compare_drafts", {"question": "Capital?", "ensemble": "lab"})
        monkeypatch.delenv("LAB_KEY")  # the drafters' key is gone; their drafts are reused
        fused = await client.call_tool("fused_answer", {"question": "Capital?", "from_run": cmp.structured_content["run_id"]})
    assert not fused.is_error, fused.content
    assert fused.structured_content["answer"] == "Paris."
    assert len(upstream.calls("alpha")) == 1 and len(upstream.calls("fuser")) == 1
