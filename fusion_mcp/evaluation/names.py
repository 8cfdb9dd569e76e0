"""The names `eval` and `tune` offer (strategies, objectives, packaged datasets), in a module of their
own so that `fusion-mcp --help` lists them without loading the datasets, the scorer or the engine."""

FUSE, VOTE, BEST, ORACLE, SINGLE, BASELINE = "fuse", "vote", "best-reviewed", "oracle", "single", "baseline"
ENSEMBLE_STRATEGIES = (FUSE, VOTE, BEST, SINGLE, ORACLE)
OBJECTIVES = ("accuracy", "cost", "latency", "pareto")
DATASETS = ("gsm8k", "arc-easy", "arc-challenge", "mmlu")  # datasets.PACKAGED's keys, in its order
