"""One settings object: every FUSION_MCP_* variable read in one place, checked, and shown by
`fusion-mcp config` with where each value came from and secrets masked; docs/settings.md lists them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusion_mcp.config.settings import Settings
from fusion_mcp.errors import ConfigError

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
])
def test_a_bad_value_is_one_error_that_names_the_variable(var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({var: raw})
    assert str(caught.value) == message


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


# Still read where they are used, not yet handed down (the price table and the model listings are
# looked up deep in the cost code): a known gap of issue 22.
NOT_YET_PASSED_DOWN = {
    "fusion_mcp/config/pricing.py": {"FUSION_MCP_PRICES"},
    "fusion_mcp/config/model_catalog.py": {"FUSION_MCP_MODELS_CACHE"},
}


def test_no_module_but_the_settings_reads_a_fusion_mcp_variable() -> None:
    """The variables are read once, in config/settings.py, and handed down; a module that reads one
    itself (naming it in a string beside os.environ) fails here, but for the known gaps above."""
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
    assert readers == NOT_YET_PASSED_DOWN
