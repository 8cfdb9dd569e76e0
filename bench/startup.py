"""How long `fusion-mcp --help` takes, against a bare interpreter start (`python -c pass`).

Each is started `--runs` times as a fresh process, alternating, and the median wall time of each is
reported with the difference: what the command line itself costs (its imports and its parser). The
target is a difference of at most 150 ms (issue 22). For where the time goes:
`python -X importtime -c "import fusion_mcp.cli.main"`.

    .venv/bin/python bench/startup.py [--runs 30] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def command() -> list[str]:
    """The installed `fusion-mcp` script beside this interpreter, else the same entry through -c."""
    script = Path(sys.executable).with_name("fusion-mcp")
    if script.exists():
        return [sys.executable, str(script), "--help"]
    return [sys.executable, "-c", "import sys; from fusion_mcp.cli.main import main; sys.argv[0] = 'fusion-mcp'; main()",
            "--help"]


def wall_ms(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="starts of each (default 30)")
    parser.add_argument("--quick", action="store_true", help="5 starts of each (a check that it runs)")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    bare_argv, help_argv = [sys.executable, "-c", "pass"], command()
    wall_ms(help_argv)  # warm the file cache and the bytecode
    bare, helped = [], []
    for _ in range(runs):
        bare.append(wall_ms(bare_argv))
        helped.append(wall_ms(help_argv))
    bare_ms, help_ms = statistics.median(bare), statistics.median(helped)
    print(f"python -c pass:       median {bare_ms:6.1f} ms over {runs} starts")
    print(f"fusion-mcp --help:    median {help_ms:6.1f} ms over {runs} starts")
    verdict = "within" if help_ms - bare_ms <= TARGET_MS else "OVER"
    print(f"difference:           {help_ms - bare_ms:6.1f} ms ({verdict} the {TARGET_MS:g} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
