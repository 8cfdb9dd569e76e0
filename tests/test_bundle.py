"""The MCP Bundle: `packaging/build_bundle.py` (what `make bundle` runs) writes a .mcpb that the official
mcpb CLI validates and unpacks; started the way its manifest tells a host to (uv, the user_config
values put into mcp_config), the server lists its tools and sees the key it was given."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.services import need

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
NETWORK_ENV = {"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
               "no_proxy"}
MCPB = "@anthropic-ai/mcpb@2.1.2"  # the official CLI, run through npx (nothing installed globally)


def mcpb(*args: str) -> str:
    done = subprocess.run([need("npx"), "-y", MCPB, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "npm_config_yes": "true", "npm_config_update_notifier": "false"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def resolved(value: str, folder: Path, user_config: dict[str, str]) -> str:
    """What a host puts in place of ${__dirname} and ${user_config.NAME}."""
    value = value.replace("${__dirname}", str(folder))
    for name, given in user_config.items():
        value = value.replace("${user_config." + name + "}", given)
    return value


async def test_the_bundle_validates_unpacks_and_starts_the_way_its_manifest_says(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, str(ROOT / "packaging" / "build_bundle.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=60, check=True)
    bundle = next(tmp_path.glob("fusion-mcp-*.mcpb"))
    assert bundle.name in built.stdout
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"manifest.json", "pyproject.toml", "server.py", "fusion_mcp/server/app.py",
            "fusion_mcp/server/run_view.html", "ensembles/frontier-trio.toml"} <= names
    assert not any("__pycache__" in n or n.startswith((".venv", "dist/")) for n in names)

    unpacked = tmp_path / "unpacked"
    assert "unpacked successfully" in mcpb("unpack", str(bundle), str(unpacked))
    assert "validation passes" in mcpb("validate", str(unpacked / "manifest.json"))
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert manifest["manifest_version"] == "0.4" and manifest["server"]["type"] == "uv"
    key = manifest["user_config"]["openrouter_api_key"]
    assert key["sensitive"] is True and key["type"] == "string"
    config = manifest["server"]["mcp_config"]
    assert config["env"]["OPENROUTER_API_KEY"] == "${user_config.openrouter_api_key}"
    assert {"default_ensemble", "tool_timeout_s"} <= set(manifest["user_config"])

    # The host: each user_config field's value (its default when the user left it), then mcp_config.
    user_config = {name: str(field.get("default", "")) for name, field in manifest["user_config"].items()}
    user_config["openrouter_api_key"] = "sk-or-bundle-test-4e1f"
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": os.environ.get("HOME", str(tmp_path)), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    # the network settings of this machine, as the host's own environment would carry them
    env.update({k: v for k, v in os.environ.items() if k in NETWORK_ENV or k.startswith("UV_")})
    env.update({k: resolved(v, unpacked, user_config) for k, v in config["env"].items()})
    assert shutil.which(config["command"], path=env["PATH"]), "uv comes with the test extra"
    params = StdioServerParameters(command=config["command"], env=env,
                                   args=[resolved(a, unpacked, user_config) for a in config["args"]])
    async with Client(params, read_timeout_seconds=300) as client:
        tools = (await client.list_tools()).tools
        ensembles = (await client.call_tool("list_ensembles", {})).structured_content
    assert sorted(t.name for t in tools) == sorted(t["name"] for t in manifest["tools"])
    ready = {e["name"]: e["ready"] for e in ensembles["ensembles"]}
    assert ready["frontier-trio"] and ready["budget-trio"]  # the key reached the server
    assert ensembles["default_reason"] == "OPENROUTER_API_KEY is set"
