"""Shared fixtures: a loopback upstream per test, a clean environment, and ensemble files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fusion_mcp import FusionEngine
from fusion_mcp.config.ensemble_registry import EnsembleRegistry
from fusion_mcp.config.pricing import Pricing
from fusion_mcp.config.settings import Settings
from fusion_mcp.fusion.delimit import read_drafts
from fusion_mcp.fusion.test_provider import TestProvider
from tests.upstream import Behaviour, Upstream

LAB_KEY = "sk-lab-test-7f3a9c1e5b"


# How `make test` spreads the suite over processes (pytest-xdist, `--dist loadgroup --no-loadscope-reorder`):
# a test file stays on one worker, so its module fixtures start once, except the files in SPREAD, whose
# tests are slow and stand alone (each benchmark's --quick run) and go to whichever worker is free.
# Work is handed out in collection order, so the slowest go first (`pytest --durations=30` finds them):
# a slow test taken last would leave the other workers idle while it runs.
SPREAD = {"test_bench.py"}
SLOWEST_FIRST = ["test_bench.py::test_benchmark_runs_in_quick_mode[faults.py]",
                 "test_bench.py::test_benchmark_runs_in_quick_mode[local_repetition.py]",
                 "test_bench.py::test_benchmark_runs_in_quick_mode[waiting.py]",
                 "test_bench.py::test_benchmark_runs_in_quick_mode[model_api.py]",
                 "test_local_model.py", "test_store_outage.py", "test_time_plan.py", "test_replicas.py",
                 "test_bench.py"]


def _rank(item: pytest.Item) -> int:
    where = f"{item.path.name}::{item.name}"
    return next((i for i, key in enumerate(SLOWEST_FIRST) if where == key or item.path.name == key),
                len(SLOWEST_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within a file is kept
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Every setting's variable (from the settings object itself, so a new one cannot be missed), the
    # built-in providers' keys and the XDG folders (and the terminal size pytest-xdist's workers set:
    # output piped from a test is as wide as a user's pipe); then the test's own.
    for var in [*Settings.env_vars(), "OPENROUTER_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                "XDG_CACHE_HOME", "XDG_DATA_HOME", "COLUMNS", "LINES"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    monkeypatch.setenv("FUSION_MCP_CACHE", str(tmp_path / "cache.sqlite3"))
    monkeypatch.setenv("FUSION_MCP_MODELS_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the user ensembles folder lives here


def env_pricing() -> Pricing:
    """Where prices come from under this test's environment (as `FusionEngine.from_settings` takes them)."""
    return Settings.from_env().pricing


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def lab_toml(
    url: str | None,
    drafters: Sequence[str | dict[str, Any]],
    reviewer: str | None = "judge",
    synthesizer: str | None = "fuser",
    *,
    kind: str = "openai",
    deadline_s: float = 10,
    min_drafts: int | None = None,
    provider_extra: str = "max_retries = 0",
    description: str = "test ensemble",
) -> str:
    """An ensemble file whose models all live on provider `lab`: the loopback upstream at `url`, or with
    `url=None` a provider handed in (kind "function": the `lab` fixture's TestProvider, no sockets)."""
    lines = [f"description = {json.dumps(description)}", f"deadline_s = {deadline_s}"]
    if min_drafts is not None:
        lines.append(f"min_drafts = {min_drafts}")
    if url is None:
        lines += ["", "[providers.lab]", 'kind = "function"', provider_extra]
    else:
        lines += ["", "[providers.lab]", f'kind = "{kind}"', f'base_url = "{url}/v1"', 'api_key_env = "LAB_KEY"',
                  provider_extra]
    for d in drafters:
        spec = {"model": d} if isinstance(d, str) else d
        lines += ["", "[[drafters]]"]
        for k, v in spec.items():
            lines.append(f"{k} = {json.dumps(f'lab:{v}' if k == 'model' else v)}")
    if reviewer:
        lines += ["", "[reviewer]", f'model = "lab:{reviewer}"']
    if synthesizer:
        lines += ["", "[synthesizer]", f'model = "lab:{synthesizer}"']
    return "\n".join(lines) + "\n"


@pytest.fixture
def ensemble_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ensembles"
    folder.mkdir()
    return folder


def write_registry(folder: Path, **files: str) -> EnsembleRegistry:
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(text)
    return EnsembleRegistry.load([folder])


def review_json(scores: dict[str, tuple[float, float, float]]) -> str:
    return json.dumps({"reviews": [
        {"label": label, "consistency": c, "accuracy": a, "completeness": m, "reason": f"reason {label}"}
        for label, (c, a, m) in scores.items()
    ]})


def drafts_in_prompt(text: str) -> dict[str, str]:
    """label -> draft text, as the reviewer or synthesizer saw them."""
    return read_drafts(text)


@pytest.fixture
def lab() -> TestProvider:
    """Provider `lab` with no sockets: every stage answered in its shape unless scripted (`lab.script`)."""
    return TestProvider("lab")


def offline_engine(folder: Path, provider: TestProvider, /, **files: str) -> FusionEngine:
    """An engine over ensemble files (written to `folder`) whose provider `lab` is the test provider."""
    return FusionEngine(write_registry(folder, **files), providers={"lab": provider})


def scoring_reviewer(score_of: dict[str, float]) -> Behaviour:
    """A reviewer that scores each draft by its text: score_of maps draft text -> score."""

    def answer(body: dict[str, Any]) -> str:
        user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        found = drafts_in_prompt(user)
        return review_json({label: (score_of.get(text, 5),) * 3 for label, text in found.items()})

    return Behaviour(text=answer)


def analysis_review(scores: dict[str, float], **analysis: Any) -> str:
    """A review reply in the shape the prompt asks for: scores by label, then the analysis."""
    return json.dumps({
        "scores": {label: {"reason": f"reason {label}", "consistency": v, "accuracy": v, "completeness": v}
                   for label, v in scores.items()},
        **{k: analysis.get(k, []) for k in ("consensus", "contradictions", "partial_coverage", "unique_insights",
                                             "blind_spots")},
    })
def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll until `condition()` holds (or `timeout_s` passes): a condition to wait for, not a fixed sleep."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


async def eventually_async(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    import anyio

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        await anyio.sleep(0.02)
    return True
