"""Ensemble files: the public contract example, validation errors that name file and key, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.config.ensembles import split_model_ref
from fusion_mcp.errors import ConfigError, UnknownEnsembleError
from tests.conftest import write_registry

CONTRACT = '''description = "Two drafts from a private endpoint, reviewed and fused"
deadline_s = 40

[providers.mylab]
kind = "openai"            # or "anthropic"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "MYLAB_KEY"  # optional

[[drafters]]
model = "mylab:alpha"

[[drafters]]
model = "mylab:beta"
weight = 2.0
temperature = 0.2

[reviewer]
model = "mylab:gamma"

[synthesizer]
model = "mylab:delta"
'''


def test_contract_example_loads_exactly_as_written(ensemble_dir: Path) -> None:
    reg = write_registry(ensemble_dir, mylab=CONTRACT)
    assert reg.errors == {}
    e = reg.get("mylab")
    assert e.description == "Two drafts from a private endpoint, reviewed and fused"
    assert e.deadline_s == 40
    assert [d.ref for d in e.drafters] == ["mylab:alpha", "mylab:beta"]
    assert e.drafters[1].weight == 2.0 and e.drafters[1].temperature == 0.2
    assert e.drafters[0].weight == 1.0
    assert e.reviewer is not None and e.reviewer.ref == "mylab:gamma"
    assert e.synthesizer is not None and e.synthesizer.ref == "mylab:delta"
    spec = e.drafters[0].provider
    assert (spec.kind, spec.base_url, spec.api_key_env) == ("openai", "http://127.0.0.1:8000/v1", "MYLAB_KEY")
    assert e.missing_keys() == ["MYLAB_KEY"]


def test_shipped_ensembles_load_and_use_openrouter_ids() -> None:
    reg = EnsembleRegistry.load()
    assert reg.errors == {}
    assert {"frontier-duo", "frontier-trio", "budget-trio", "local"} <= set(reg.names())
    duo = reg.get("frontier-duo")
    assert [d.ref for d in duo.drafters] == ["openrouter:anthropic/claude-opus-4.8", "openrouter:openai/gpt-5.5"]
    assert duo.synthesizer is not None and duo.synthesizer.ref == "openrouter:anthropic/claude-opus-4.8"
    trio = reg.get("frontier-trio")
    assert "openrouter:google/gemini-3.1-pro-preview" in [d.ref for d in trio.drafters]
    budget = reg.get("budget-trio")
    assert {d.model_id for d in budget.drafters} == {
        "google/gemini-3-flash-preview", "moonshotai/kimi-k2.6", "deepseek/deepseek-v4-pro"
    }
    assert budget.missing_keys() == ["OPENROUTER_API_KEY"]


def test_model_refs_split_at_the_first_colon() -> None:
    assert split_model_ref("openrouter:openai/gpt-5.5") == ("openrouter", "openai/gpt-5.5")
    assert split_model_ref("ollama:qwen3:8b") == ("ollama", "qwen3:8b")
    with pytest.raises(ValueError, match="provider:model-id"):
        split_model_ref("gpt-5.5")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("deadline_s = 40\n[[drafters]\nmodel = 'x'", None, "not valid TOML"),
        ("deadlin_s = 40\n[[drafters]]\nmodel = 'openai:gpt-5.5'", "deadlin_s", "unknown key (did you mean 'deadline_s'?)"),
        ("[[drafters]]\nmodel = 'openai:gpt-5.5'\ntemprature = 0.3", "drafters[0].temprature", "unknown key"),
        ("[[drafters]]\nmodel = 'nowhere:gpt-5.5'", "drafters[0].model", "unknown provider 'nowhere'"),
        ("[[drafters]]\nmodel = 'gpt-5.5'", "drafters[0].model", "provider:model-id"),
        ("description = 'empty'", "drafters", "Field required"),
        ("drafters = []", "drafters", "at least 1"),
        ("[[drafters]]\nmodel = 'openai:a'\n[reviewer]\nmodel = 'mars:b'", "reviewer.model", "unknown provider 'mars'"),
        ("min_drafts = 3\n[[drafters]]\nmodel = 'openai:a'", "min_drafts", "only 1 drafters"),
        ("[providers.x]\nkind = 'openai'\n[[drafters]]\nmodel = 'x:a'", "providers.x", "needs a base_url"),
        ("[providers.x]\nkind = 'grpc'\nbase_url = 'http://h'\n[[drafters]]\nmodel = 'x:a'", "providers.x.kind", "unknown provider kind 'grpc'"),
    ],
)
def test_broken_files_name_the_file_and_key_and_the_rest_still_load(
    ensemble_dir: Path, text: str, key: str | None, words: str
) -> None:
    reg = write_registry(ensemble_dir, broken=text, fine="[[drafters]]\nmodel = 'openai:gpt-5.5'\n")
    assert "fine" in reg.names()
    assert "broken" not in reg.names()
    error = reg.errors["broken"]
    message = str(error)
    assert str(ensemble_dir / "broken.toml") in message
    if key:
        assert f"[{key}]" in message
    assert words in message
    with pytest.raises(ConfigError, match="broken.toml"):
        reg.get("broken")


def test_unknown_ensemble_lists_the_names(ensemble_dir: Path) -> None:
    reg = write_registry(ensemble_dir, one="[[drafters]]\nmodel = 'openai:a'\n")
    with pytest.raises(UnknownEnsembleError) as info:
        reg.get("nope")
    assert "nope" in str(info.value) and "one" in str(info.value) and "frontier-duo" in str(info.value)


def test_env_folders_override_shipped_files_and_cli_folders_override_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_a, env_b, cli = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (env_a, env_b, cli):
        folder.mkdir()
    (env_a / "frontier-duo.toml").write_text("description = 'mine'\n[[drafters]]\nmodel = 'ollama:llama3:8b'\n")
    (env_b / "extra.toml").write_text("description = 'env b'\n[[drafters]]\nmodel = 'ollama:qwen3'\n")
    (cli / "extra.toml").write_text("description = 'from cli'\n[[drafters]]\nmodel = 'ollama:qwen3'\n")
    monkeypatch.setenv("FUSION_MCP_ENSEMBLES", f"{env_a}:{env_b}")
    reg = EnsembleRegistry.load([cli])
    assert reg.get("frontier-duo").description == "mine"
    assert reg.get("frontier-duo").drafters[0].model_id == "llama3:8b"
    assert reg.get("extra").description == "from cli"


def test_a_missing_folder_the_user_named_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"nope: ensemble folder does not exist \(given in --ensembles\)"):
        EnsembleRegistry.load([tmp_path / "nope"])
    monkeypatch.setenv("FUSION_MCP_ENSEMBLES", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match=r"gone: ensemble folder does not exist \(given in FUSION_MCP_ENSEMBLES\)"):
        EnsembleRegistry.load()


def test_default_ensemble_follows_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = EnsembleRegistry.load()
    name, why = reg.default()
    assert name == "local" and "OPENROUTER_API_KEY" in why
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-123456")
    name, why = reg.default()
    assert name == "budget-trio" and "OPENROUTER_API_KEY is set" in why
    monkeypatch.setenv("FUSION_MCP_DEFAULT_ENSEMBLE", "frontier-trio")  # a setting: read when the registry loads
    assert EnsembleRegistry.load().default()[0] == "frontier-trio"


def test_a_base_url_without_a_scheme_is_a_configuration_error(ensemble_dir: Path) -> None:
    reg = write_registry(ensemble_dir, x="[providers.x]\nkind = 'openai'\nbase_url = 'localhost:8000/v1'\n"
                                         "[[drafters]]\nmodel = 'x:a'\n")
    assert "must start with http:// or https://" in str(reg.errors["x"])
    assert "[providers.x]" in str(reg.errors["x"])
