"""Model discovery over loopback HTTP: a provider's GET /models listing, cached on disk with its age,
refreshed after a day, the stale cache used when the provider is unreachable; listed prices used for
estimates; ensembles warned of model ids not in a listing, with the closest ids."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fusion_mcp.cli.main import main
from fusion_mcp.config.settings import Settings
from fusion_mcp.fusion.estimate import estimate_run
from fusion_mcp.server.app import create_server
from tests.conftest import env_pricing, lab_toml, write_registry
from tests.upstream import Upstream

LISTING: list[dict[str, Any]] = [
    {"id": "alpha", "context_length": 128000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    {"id": "alpha-pro", "context_length": 200000, "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
    {"id": "beta", "pricing": {"prompt": "-1", "completion": "-1"}},  # variable price: unknown
    {"id": "judge"}, {"id": "fuser"},
    {"object": "model"},  # no id: skipped
]


async def _list(client: Client, **args) -> dict:
    result = await client.call_tool("list_models", {"provider": "lab", **args})
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.anyio
async def test_list_models_fetches_caches_and_refreshes(upstream: Upstream, ensemble_dir: Path) -> None:
    upstream.models = LISTING
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        first = await _list(client)
        assert [m["model"] for m in first["models"]] == ["lab:alpha", "lab:alpha-pro", "lab:beta", "lab:judge", "lab:fuser"]
        alpha = first["models"][0]
        assert (alpha["context_length"], alpha["input_usd_per_mtok"], alpha["output_usd_per_mtok"]) == (128000, 1.0, 2.0)
        assert "input_usd_per_mtok" not in first["models"][2] or first["models"][2]["input_usd_per_mtok"] is None
        assert first["providers"] == [{"provider": "lab", "source": "fetched", "age_s": 0, "models": 5, "error": None}]
        assert upstream.listing_requests[0].path == "/v1/models"
        assert upstream.listing_requests[0].headers["authorization"] == "Bearer sk-lab-test-7f3a9c1e5b"

        again = await _list(client, search="ALPHA pro")
        assert [m["model"] for m in again["models"]] == ["lab:alpha-pro"] and again["matched"] == 1
        assert again["providers"][0]["source"] == "cache" and len(upstream.listing_requests) == 1

        limited = await _list(client, limit=2)
        assert len(limited["models"]) == 2 and limited["matched"] == 5
        await _list(client, refresh=True)
        assert len(upstream.listing_requests) == 2

        bad = await client.call_tool("list_models", {"provider": "nope"})
        assert bad.is_error and "no model listing for provider 'nope'" in bad.content[0].text
        assert "openrouter" in bad.content[0].text


def _age_cache(provider: str, seconds: float) -> None:
    path = Settings.from_env().models_cache_dir / f"{provider}.json"
    data = json.loads(path.read_text())
    data["fetched_at"] = time.time() - seconds
    path.write_text(json.dumps(data))


@pytest.mark.anyio
async def test_a_day_old_listing_is_fetched_again_and_the_cache_serves_offline(upstream: Upstream, ensemble_dir: Path):
    upstream.models = LISTING
    server = create_server(write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"])))
    async with Client(server) as client:
        await _list(client)
        _age_cache("lab", 2 * 86400)
        upstream.models_status = 503  # the provider is down
        stale = await _list(client)
        assert len(upstream.listing_requests) == 2  # a day old: it tried again
        p = stale["providers"][0]
        assert p["source"] == "stale cache" and p["age_s"] >= 2 * 86400 - 5 and "HTTP 503" in p["error"]
        assert len(stale["models"]) == 5
        (Settings.from_env().models_cache_dir / "lab.json").unlink()
        none = await _list(client)
        assert none["models"] == [] and none["providers"][0]["source"] == "none"


@pytest.mark.anyio
async def test_listed_prices_feed_estimates_and_unlisted_ids_are_warned(upstream: Upstream, ensemble_dir: Path):
    upstream.models = LISTING
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "alpah"], reviewer="alpha", synthesizer="alpha"))
    assert estimate_run(reg.get("lab"), "Q?", None, env_pricing()).unpriced == ["lab:alpha", "lab:alpah"]  # nothing listed yet
    server = create_server(reg)
    async with Client(server) as client:
        await _list(client)
        listed = (await client.call_tool("list_ensembles", {})).structured_content
        lab = next(e for e in listed["ensembles"] if e["name"] == "lab")
        assert lab["warnings"] == ["lab:alpah is not in lab's model listing (5 models); closest: alpha, alpha-pro"]
        assert next(e for e in listed["ensembles"] if e["name"] == "local")["warnings"] == []
    est = estimate_run(reg.get("lab"), "Q?", None, env_pricing())
    assert est.unpriced == ["lab:alpah"]  # alpha's price now comes from the listing
    alpha_draft = next(usd for stage, model, usd in est.calls if model == "lab:alpha" and stage == "draft")
    assert alpha_draft == pytest.approx(2048 * 2.0 / 1e6, rel=0.1)


def test_cli_models_table_and_errors(upstream: Upstream, ensemble_dir: Path, capsys: pytest.CaptureFixture[str]):
    upstream.models = LISTING
    write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha"]))
    code = main(["models", "--provider", "lab", "--search", "alpha", "--ensembles", str(ensemble_dir)])
    captured = capsys.readouterr()
    assert code == 0 and "lab:alpha-pro" in captured.out and "128,000" in captured.out and "lab:beta" not in captured.out
    assert "lab: fetched, 5 models" in captured.err
    code = main(["models", "--provider", "lab", "--json", "--ensembles", str(ensemble_dir)])
    assert code == 0 and json.loads(capsys.readouterr().out)["providers"][0]["source"] == "cache"
    code = main(["models", "--provider", "nope", "--ensembles", str(ensemble_dir)])
    assert code == 2 and "no model listing for provider 'nope'" in capsys.readouterr().err
