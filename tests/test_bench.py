"""Every benchmark under bench/ still runs: its `--quick` mode exits 0 and prints its measurements.

The numbers themselves are not asserted (timing belongs in the benchmarks' reports, not in tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_in_quick_mode(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "FUSION_MCP_CACHE": str(tmp_path / "cache.sqlite3"), "LAB_KEY": "bench-key-123456"}
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, f"{script} --quick failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{script} --quick printed nothing"
    assert "Traceback" not in done.stderr
