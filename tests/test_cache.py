"""The draft cache: a repeated call is answered from SQLite, keys never touch the disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fusion_mcp.config.settings import Settings
from fusion_mcp.fusion.engine import FusionEngine
from fusion_mcp.fusion.test_provider import TestProvider
from fusion_mcp.store.call_cache import SQLiteCallCache
from tests.conftest import LAB_KEY, lab_toml, scoring_reviewer, write_registry


@pytest.mark.anyio
async def test_second_run_is_answered_from_the_cache(upstream, ensemble_dir, tmp_path):
    upstream.script("alpha", text="Paris is the capital.")
    upstream.script("beta", text="It is Lyon.")
    upstream.script("judge", scoring_reviewer({"Paris is the capital.": 9, "It is Lyon.": 2}))
    upstream.script("fuser", text="Paris.")
    reg = write_registry(ensemble_dir, lab=lab_toml(upstream.url, ["alpha", "beta"]))
    path = tmp_path / "c.sqlite3"
    with SQLiteCallCache(path) as cache:
        async with FusionEngine(reg, cache=cache) as engine:
            first = await engine.fuse("Capital of France?", ensemble="lab", run_id="r1")
    calls = len(upstream.calls())
    assert calls == 4
    with SQLiteCallCache(path) as cache:  # a new process would see the same file
        assert cache.count() == 4
        async with FusionEngine(reg, cache=cache) as engine:
            second = await engine.fuse("Capital of France?", ensemble="lab", run_id="r1")
            assert (cache.hits, cache.misses) == (4, 0)
            # Another question: only new calls go upstream.
            await engine.fuse("Capital of Spain?", ensemble="lab", run_id="r2")
    assert len(upstream.calls()) == calls + 4
    assert second.answer == first.answer == "Paris."
    assert all(d.cached for d in second.drafts) and second.review.cached and second.synthesis.cached
    assert not any(d.cached for d in first.drafts)
    assert [d.text for d in second.drafts] == [d.text for d in first.drafts]
    # The key went upstream, never into the cache file.
    assert upstream.calls("alpha")[0].headers["authorization"] == f"Bearer {LAB_KEY}"
    assert LAB_KEY.encode() not in path.read_bytes()
    rows = sqlite3.connect(path).execute("SELECT key, completion FROM calls").fetchall()
    assert rows and all(LAB_KEY not in key and LAB_KEY not in data for key, data in rows)


@pytest.mark.anyio
async def test_other_parameters_or_samples_are_not_shared(lab: TestProvider, ensemble_dir, tmp_path):
    lab.script("alpha", text=lambda asked: f"answer {asked.n}")  # each call its own text
    reg = write_registry(
        ensemble_dir,
        a=lab_toml(None, [{"model": "alpha", "temperature": 0.2}, {"model": "alpha", "temperature": 0.2}],
                   reviewer=None, synthesizer=None),
        b=lab_toml(None, [{"model": "alpha", "temperature": 0.9}], reviewer=None, synthesizer=None),
    )
    with SQLiteCallCache(tmp_path / "c.sqlite3") as cache:
        async with FusionEngine(reg, cache=cache, providers={"lab": lab}) as engine:
            first = await engine.fuse("Q?", ensemble="a")
            await engine.fuse("Q?", ensemble="b")
            again = await engine.fuse("Q?", ensemble="a")
    # Two samples (index 0 and 1) at 0.2, one at 0.9; the rerun of `a` is free, each sample its own answer.
    assert len(lab.calls_to("alpha")) == 3
    assert [d.text for d in again.drafts] == [d.text for d in first.drafts] and len({d.text for d in again.drafts}) == 2


def test_default_path_follows_env_then_xdg(monkeypatch, tmp_path):
    assert Settings.from_env({"FUSION_MCP_CACHE": str(tmp_path / "x.sqlite3")}).cache_path == tmp_path / "x.sqlite3"
    data = Settings.from_env({"XDG_DATA_HOME": str(tmp_path / "data")}).cache_path
    assert data == tmp_path / "data" / "fusion-mcp" / "cache.sqlite3"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = Settings.from_env({}).cache_path
    assert home == Path(tmp_path / "home" / ".local" / "share" / "fusion-mcp" / "cache.sqlite3")


def test_unwritable_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(Exception, match="cannot open the call cache.*--no-cache"):
        SQLiteCallCache(blocker / "c.sqlite3")
