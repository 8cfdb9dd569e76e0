"""One settings object: every FUSION_MCP_* variable read in one place, checked, and shown by
`fusion-mcp config` with where each value came from and secrets masked; docs/settings.md lists them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.config.model_search import search_models
from fusion_mcp.config.settings import Settings
from fusion_mcp.errors import ConfigError
from fusion_mcp.providers import ChatRequest, Message
from tests.conftest import lab_toml, write_registry
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parent.parent


def test_each_value_comes_from_the_default_the_variable_or_a_flag() -> None:
    env = {"FUSION_MCP_TOOL_TIMEOUT": "20", "FUSION_MCP_ENSEMBLES": f"/a{':' if sys.platform != 'win32' else ';'}/b"}
    settings = Settings.from_env(env).with_flags(lease_s=30.0)
    assert settings.tool_timeout_s == 20 and settings.sources["tool_timeout_s"] == "env FUSION_MCP_TOOL_TIMEOUT"
    assert settings.ensembles == [Path("/a"), Path("/b")] and settings.user_ensembles_dir == Path("/a")
    assert settings.lease_s == 30 and settings.sources["lease_s"] == "flag lease_s"
    assert settings.local_parallel == 3 and "local_parallel" not in settings.sources  # the default


@pytest.mark.parametrize(("var", "raw", "message"), [
    ("FUSION_MCP_TOOL_TIMEOUT", "soon", "FUSION_MCP_TOOL_TIMEOUT='soon' is not a number of seconds"),
    ("FUSION_MCP_TOOL_TIMEOUT", "0", "FUSION_MCP_TOOL_TIMEOUT='0' must be between 1 and 3600"),
    ("FUSION_MCP_LEASE_S", "9999", "FUSION_MCP_LEASE_S='9999' must be between 1 and 600"),
    ("FUSION_MCP_LOCAL_CTX", "64", "FUSION_MCP_LOCAL_CTX='64' must be at least 512"),
    ("FUSION_MCP_LOCAL_THREADS", "two", "FUSION_MCP_LOCAL_THREADS='two' is not a whole number"),
    ("FUSION_MCP_CONFIRM_OVER", "cheap", "FUSION_MCP_CONFIRM_OVER='cheap' is not an amount in USD (e.g. 0.05)"),
    ("FUSION_MCP_USER_BUDGET_USD", "-1", "FUSION_MCP_USER_BUDGET_USD='-1' must be at least 0"),
    ("FUSION_MCP_METRICS_PORT", "99999", "FUSION_MCP_METRICS_PORT='99999' must be between 1 and 65535"),
])
def test_a_bad_value_is_one_error_that_names_the_variable(var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({var: raw})
    assert str(caught.value) == message


def test_the_team_and_confirm_settings_read_the_environment_and_flags_win() -> None:
    env = {"FUSION_MCP_CONFIRM_OVER": "$0.05", "FUSION_MCP_OAUTH_ISSUER": "https://id.example.com",
           "FUSION_MCP_METRICS_PORT": "9464", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True"}
    settings = Settings.from_env(env).with_flags(oauth_issuer="https://other.example.com", metrics_port=None)
    assert settings.confirm_over_usd == 0.05 and settings.metrics_port == 9464 and settings.trace_content
    assert settings.oauth_issuer == "https://other.example.com"
    assert settings.sources["oauth_issuer"] == "flag --oauth-issuer"
    assert settings.sources["metrics_port"] == "env FUSION_MCP_METRICS_PORT"


def test_half_an_oauth_configuration_in_the_environment_stops_serve() -> None:
    done = subprocess.run([sys.executable, "-m", "fusion_mcp", "serve", "--transport", "streamable-http"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "FUSION_MCP_OAUTH_ISSUER": "http://127.0.0.1:1"})
    assert done.returncode == 2 and "set --oauth-audience too" in done.stderr and "Traceback" not in done.stderr


def test_config_prints_every_setting_with_its_source_and_masks_secrets(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FUSION_MCP_AUTH_TOKEN": "s3cret-token-value-123",
           "FUSION_MCP_STORE": "redis://:RedisPass99@cache:6379/0", "FUSION_MCP_TOOL_TIMEOUT": "25"}
    done = subprocess.run([sys.executable, "-m", "fusion_mcp", "config", "--json"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    rows = {r["variable"]: r for r in json.loads(done.stdout)}
    assert set(rows) == set(Settings.env_vars())
    assert rows["FUSION_MCP_TOOL_TIMEOUT"] == {"variable": "FUSION_MCP_TOOL_TIMEOUT", "value": "25.0",
                                               "source": "env FUSION_MCP_TOOL_TIMEOUT"}
    assert rows["FUSION_MCP_LEASE_S"]["source"] == "default"
    assert rows["FUSION_MCP_CACHE"]["value"] == str(tmp_path / ".local" / "share" / "fusion-mcp" / "cache.sqlite3")
    assert "s3cret-token-value-123" not in done.stdout and "RedisPass99" not in done.stdout
    assert rows["FUSION_MCP_STORE"]["value"] == "redis://***@cache:6379/0"
    table = subprocess.run([sys.executable, "-m", "fusion_mcp", "config"], capture_output=True, text=True,
                           timeout=60, env=env)
    assert table.returncode == 0 and "FUSION_MCP_LOCAL_PARALLEL" in table.stdout and "s3cret" not in table.stdout


def test_a_bad_variable_stops_any_command_with_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "fusion_mcp", "ensembles"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "FUSION_MCP_LEASE_S": "forever"})
    assert done.returncode == 2 and done.stderr.strip() == "error: FUSION_MCP_LEASE_S='forever' is not a number of seconds"


def test_the_docs_list_every_setting() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert [var for var in Settings.env_vars() if f"`{var}`" not in text] == []


def test_no_module_but_the_settings_reads_a_fusion_mcp_variable() -> None:
    """The variables are read once, in config/settings.py, and handed down; a module that reads one
    itself (naming it in a string beside os.environ) fails here."""
    readers: dict[str, set[str]] = {}
    for path in sorted((ROOT / "fusion_mcp").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        if rel == "fusion_mcp/config/settings.py" or "os.environ" not in text:
            continue
        named = {var for var in Settings.env_vars() if f'"{var}"' in text}
        if rel == "fusion_mcp/redaction.py":  # it lists secret variables to redact, it reads no setting
            named.discard("FUSION_MCP_AUTH_TOKEN")
        if named:
            readers[rel] = named
    assert readers == {}


@pytest.mark.anyio
async def test_an_engine_prices_with_the_settings_it_was_built_from(upstream: Upstream, ensemble_dir: Path,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The price file is a setting handed down when an engine is built: naming one in the environment
    later changes nothing for that engine (its calls stay of unknown cost), and a new engine takes it."""
    upstream.script("m", text="4", input_tokens=1000, output_tokens=500)
    role = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["m"], None, None)).get("lab").drafters[0]
    ask = ChatRequest(messages=[Message(role="user", content="2+2?")], max_tokens=50)
    async with FusionEngine.from_settings() as before:
        prices = tmp_path / "prices.toml"
        prices.write_text('["lab:m"]\ninput = 2.0\noutput = 10.0\n')
        monkeypatch.setenv("FUSION_MCP_PRICES", str(prices))
        old = await before.call(role, ask, timeout_s=10)
        async with FusionEngine.from_settings() as after:
            new = await after.call(role, ask, timeout_s=10)
    assert (old.cost_usd, old.cost_source) == (None, "unknown")
    assert new.cost_source == "price_table" and new.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)


@pytest.mark.anyio
async def test_each_settings_object_reads_the_model_listings_in_its_own_folder(
        upstream: Upstream, ensemble_dir: Path, tmp_path: Path) -> None:
    """Two models-cache folders in one process: a listing fetched into one prices models there only."""
    upstream.models = [{"id": "m", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]
    registry = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["m"], None, None))
    one, other = (Settings.from_env({"FUSION_MCP_MODELS_CACHE": str(tmp_path / name)}) for name in ("one", "other"))
    async with httpx2.AsyncClient() as client:
        found = await search_models(registry, client, one.models_cache_dir, provider="lab")
    assert [m.model for m in found.models] == ["lab:m"] and (tmp_path / "one" / "lab.json").exists()
    price = one.pricing.price_for("lab:m")
    assert price is not None and (price.input, price.output) == (1.0, 2.0)
    assert other.pricing.price_for("lab:m") is None and not (tmp_path / "other").exists()
