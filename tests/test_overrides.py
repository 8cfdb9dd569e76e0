"""Per-call models: with_roles replaces an ensemble's drafters, reviewer or synthesizer for one call;
the tools and `ask --drafter` use it; unknown providers and malformed references are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from fusion_mcp.cli.main import main
from fusion_mcp.config.overrides import ModelChoiceError, with_roles
from fusion_mcp.server.app import create_server
from tests.conftest import lab_toml, scoring_reviewer, write_registry
from tests.upstream import Upstream


def _lab(folder: Path):
    toml = lab_toml(None, [{"model": "alpha", "temperature": 0.4, "max_tokens": 300}, "beta"])
    toml = toml.replace('[reviewer]\nmodel = "lab:judge"', '[reviewer]\nmodel = "lab:judge"\ntemperature = 0.1\nmax_tokens = 500')
    return write_registry(folder, lab=toml).get("lab")


def test_with_roles_replaces_only_what_is_given(ensemble_dir: Path) -> None:
    lab = _lab(ensemble_dir)
    assert with_roles(lab) is lab
    chosen = with_roles(lab, ["lab:alpha", "lab:gamma", "openrouter:openai/gpt-5.5"], reviewer="lab:critic")
    assert [d.ref for d in chosen.drafters] == ["lab:alpha", "lab:gamma", "openrouter:openai/gpt-5.5"]
    assert chosen.drafters[0].max_tokens == 300 and chosen.drafters[0].temperature == 0.4  # kept its settings
    assert chosen.drafters[1].max_tokens is None
    assert chosen.drafters[2].provider.name == "openrouter"  # built-in providers stay available
    # the reviewer is replaced but keeps the role's settings; synthesizer and deadline stay
    assert chosen.reviewer.ref == "lab:critic" and chosen.reviewer.max_tokens == 500 and chosen.reviewer.temperature == 0.1
    assert chosen.synthesizer == lab.synthesizer and chosen.deadline_s == lab.deadline_s
    assert chosen.min_drafts <= 3 and with_roles(lab, ["lab:solo"]).min_drafts == 1
    assert lab.drafters[1].ref == "lab:beta"  # the ensemble itself is untouched


@pytest.mark.parametrize(("drafters", "reviewer", "message"), [
    (["gpt-5.5"], None, "drafters[0] 'gpt-5.5' must look like 'provider:model-id'"),
    (["lab:alpha", "nope:model"], None, "drafters[1] 'nope:model' names unknown provider 'nope'"),
    (None, ":x", "reviewer ':x' must look like"),
    ([f"lab:m{i}" for i in range(9)], None, "drafters takes 1 to 8 models, not 9"),
    ([], None, "drafters takes 1 to 8 models, not 0"),
])
def test_bad_references_are_clear_errors(ensemble_dir: Path, drafters, reviewer, message) -> None:
    with pytest.raises(ModelChoiceError) as exc:
        with_roles(_lab(ensemble_dir), drafters, reviewer)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.anyio
async def test_the_tools_run_the_models_chosen_for_the_call(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.script("gamma", text="Paris is the capital of France.")
    upstream.script("delta", text="It is Lyon.")
    upstream.script("critic", scoring_reviewer({"Paris is the capital of France.": 9, "It is Lyon.": 2}))
    upstream.script("writer", text="Paris.")
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        fused = await client.call_tool("fused_answer", {
            "question": "Capital?", "ensemble": "lab", "drafters": ["lab:gamma", "lab:delta"],
            "reviewer": "lab:critic", "synthesizer": "lab:writer"})
        compared = await client.call_tool("compare_drafts", {
            "question": "Capital?", "ensemble": "lab", "drafters": ["lab:gamma", "lab:delta"], "reviewer": "lab:critic"})
        bad = await client.call_tool("fused_answer", {"question": "Capital?", "ensemble": "lab", "drafters": ["x:y"]})
        again = await client.call_tool("fused_answer", {"question": "Capital?", "from_run":
                                                        compared.structured_content["run_id"], "synthesizer": "lab:writer"})
    assert not fused.is_error, fused.content
    assert fused.structured_content["answer"] == "Paris."
    assert {d["model"] for d in fused.structured_content["drafts"]} == {"lab:gamma", "lab:delta"}
    assert fused.structured_content["review"]["model"] == "lab:critic"
    assert {d["model"] for d in compared.structured_content["drafts"]} == {"lab:gamma", "lab:delta"}
    assert upstream.calls("alpha") == upstream.calls("judge") == upstream.calls("fuser") == []
    assert bad.is_error and "unknown provider 'x'" in bad.content[0].text and "list_models" in bad.content[0].text
    assert not again.is_error and len(upstream.calls("writer")) == 2


@pytest.mark.anyio
async def test_a_chosen_model_needing_an_unset_key_is_named(upstream: Upstream, ensemble_dir: Path) -> None:
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        result = await client.call_tool("fused_answer", {
            "question": "Capital?", "ensemble": "lab", "reviewer": "openrouter:openai/gpt-5.5"})
    assert result.is_error and "OPENROUTER_API_KEY" in result.content[0].text
    assert upstream.calls() == []


def test_ask_takes_the_models_for_the_call(upstream: Upstream, ensemble_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    upstream.script("gamma", text="Paris.")
    upstream.script("delta", text="Paris, France.")
    upstream.script("writer", text="Paris it is.")
    write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    code = main(["ask", "Capital?", "-e", "lab", "--ensembles", str(ensemble_dir), "--drafter", "lab:gamma",
                 "--drafter", "lab:delta", "--synthesizer", "lab:writer"])
    out = capsys.readouterr().out
    assert code == 0 and "Paris it is." in out
    assert len(upstream.calls("gamma")) == len(upstream.calls("delta")) == 1 and upstream.calls("alpha") == []
    code = main(["ask", "Capital?", "-e", "lab", "--ensembles", str(ensemble_dir), "--reviewer", "judge"])
    assert code == 2 and "must look like 'provider:model-id'" in capsys.readouterr().err
