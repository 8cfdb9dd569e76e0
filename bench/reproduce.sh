#!/usr/bin/env bash
# Re-measure every figure that README.md and docs/*.md state, with the command the docs name beside it.
# Each step's output goes to OUT/NN-step.txt (the command first, then its output, its exit code and
# wall time); OUT/summary.txt lists every step. Nothing is skipped: a step that fails is reported
# and the next one runs.
#
#   bench/reproduce.sh [--quick | --fit30] [--only STEP[,STEP...]] [--list] [OUT]     (OUT: bench-out/)
#
#   (default)  the sizes the docs state (about 62 min on a 2-core machine, 28 without the two ARC-Easy runs)
#   --fit30    the sizes proposed for a 30-minute window on 2 cores (about 25 min): host_limit and model_api
#              1 run each and no "before" rows, eval on 20 ARC-Easy items, no tune run (TUNE_LIMIT=12 adds ~5 min)
#   --quick    every step with --quick or a tiny size: a smoke check that each command still runs (~8 min)
#
# Sizes can also be set one by one (environment; the mode's values otherwise):
#   STARTUP_RUNS ENGINE_RUNS SERVER_CALLS SERVER_SPAWNS MODEL_API_REPEAT REPLICA_CALLS REPLICA_REPEAT TUNE_BENCH_REPEAT
#   LOCAL_RUNS HOST_LIMIT_RUNS BASELINE (a commit for the host_limit "before" rows; empty: none)
#   EVAL_LIMIT TUNE_LIMIT (ARC-Easy items; 0: not run) DEMO_PIP_CACHE (1: let pip use its cache)
# Needs: make install-test done (.venv), redis-server and haproxy (make test-services), git.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
FM=$ROOT/.venv/bin/fusion-mcp

MODE=full ONLY= OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick ;;
    --fit30) MODE=fit30 ;;
    --only) ONLY=,$2,; shift ;;
    --list) MODE=list ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUT=$1 ;;
  esac
  shift
done
OUT=${OUT:-bench-out}

# name=full:fit30:quick
size() {
  local full=$1 fit=$2 quick=$3
  case $MODE in quick) echo "$quick" ;; fit30) echo "$fit" ;; *) echo "$full" ;; esac
}
: "${STARTUP_RUNS:=$(size 30 30 5)}" "${ENGINE_RUNS:=$(size 30 30 3)}"
: "${SERVER_CALLS:=$(size 20 20 3)}" "${SERVER_SPAWNS:=$(size 3 3 1)}"
: "${REPLICA_CALLS:=$(size 600 600 12)}" "${REPLICA_REPEAT:=$(size 2 2 1)}"
: "${TUNE_BENCH_REPEAT:=$(size 2 2 1)}" "${LOCAL_RUNS:=$(size 3 3 1)}" "${MODEL_API_REPEAT:=$(size 2 1 1)}"
: "${HOST_LIMIT_RUNS:=$(size 2 1 1)}" "${BASELINE=$(size ad3420c '' ad3420c)}"
: "${EVAL_LIMIT:=$(size 100 20 2)}" "${TUNE_LIMIT:=$(size 40 0 4)}" "${DEMO_PIP_CACHE:=$(size 0 0 1)}"
Q=$([ "$MODE" = quick ] && echo --quick)

# Every step sees no API key and no user file: the figures are those of the shipped ensembles.
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/baseline" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
export XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data XDG_CACHE_HOME=$WORK/cache
export FUSION_MCP_CACHE=$WORK/data/cache.sqlite3 LAB_KEY=bench-key-123456 COLUMNS=200
unset OPENROUTER_API_KEY OPENAI_API_KEY ANTHROPIC_API_KEY FUSION_MCP_ENSEMBLES FUSION_MCP_DEFAULT_ENSEMBLE \
  FUSION_MCP_STORE FUSION_MCP_PACES FUSION_MCP_PRICES FUSION_MCP_LOCAL_PARALLEL FUSION_MCP_LOCAL_THREADS
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME"

N=0
step() {  # step NAME DOC-WHERE COMMAND...: run COMMAND (a bash string), save its output
  local name=$1 where=$2 cmd=$3
  N=$((N + 1))
  if [ "$MODE" = list ]; then printf '%-22s %-34s %s\n' "$name" "$where" "$cmd"; return; fi
  if [ -n "$ONLY" ] && [[ $ONLY != *",$name,"* ]]; then return; fi
  local file; file=$(printf '%s/%02d-%s.txt' "$OUT" "$N" "$name")
  printf '== %-22s (%s)\n' "$name" "$where"
  local started=$SECONDS
  { echo "\$ $cmd"; echo "# for: $where; mode $MODE; $(date -u +%FT%TZ); $(git rev-parse --short HEAD); load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo; } >"$file"
  (cd "$ROOT" && bash -c "$cmd") >>"$file" 2>&1
  local rc=$? took=$((SECONDS - started))
  printf '\n# exit %s, %s s\n' "$rc" "$took" >>"$file"
  printf '%-22s exit %-3s %5s s  %s\n' "$name" "$rc" "$took" "$where" | tee -a "$OUT/summary.txt"
}

[ "$MODE" = list ] || { mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); : >"$OUT/summary.txt"
  echo "bench/reproduce.sh: mode $MODE, output in $OUT (about $(size '62 min' '25 min' '8 min') on 2 cores)"; }

# 1. Counts and sizes (seconds).
step tools-list "agents.md, tools.md, server.md" \
  "$PY bench/tools_list_size.py $Q"
step ensembles "web.md (cost per call), ensembles.md" \
  "$FM ensembles"
step dataset-sizes "eval.md (Datasets)" \
  "$PY bench/dataset_sizes.py $Q"
step json-repair "security.md (60,000 brackets row)" \
  "$PY bench/json_repair.py $Q"
step eval-verdict-test "eval.md (the verdict example)" \
  "$PY -m pytest tests/test_eval_run.py tests/test_eval_stats.py -q -p no:cacheprovider"

# 2. CPU-bound benchmarks against the loopback upstream (a few minutes).
step startup "security.md (Load: start-up)" \
  "$PY bench/startup.py $([ "$MODE" = quick ] && echo --quick || echo --runs "$STARTUP_RUNS")"
step engine-overhead "development.md (last paragraph)" \
  "$PY bench/engine_overhead.py $([ "$MODE" = quick ] && echo --quick || echo --runs "$ENGINE_RUNS")"
step server-overhead "server.md (Measured)" \
  "$PY bench/server_overhead.py $([ "$MODE" = quick ] && echo --quick || echo --calls "$SERVER_CALLS" --spawns "$SERVER_SPAWNS")"
step model-api "model-api.md (Measured)" \
  "for i in \$(seq $MODEL_API_REPEAT); do $PY bench/model_api.py $Q; done"
step load "security.md (Load)" \
  "$PY bench/load.py $Q"
step load-ceiling128 "security.md (Load: --ceiling 128 --pool 256)" \
  "$PY bench/load.py $Q --ceiling 128 --pool 256"
step load-ceiling64 "security.md (Load: --ceiling 64 --pool 128)" \
  "$PY bench/load.py $Q --ceiling 64 --pool 128"
step load-http "security.md (Through fusion-mcp serve)" \
  "for n in 128 64; do $PY bench/load.py --http --calls \$n --sequential 10 --no-startup $([ "$MODE" = quick ] && echo --delay 0.2); done"
step load-http-stream "security.md (Through fusion-mcp serve: streamed replies)" \
  "for n in 128 64; do $PY bench/load.py --http --calls \$n --sequential 10 --no-startup --ttft 0.1 $([ "$MODE" = quick ] && echo --delay 0.2); done"
step load-http-real-pace "security.md (Through fusion-mcp serve: at a real model's pace)" \
  "for n in 128 64; do $PY bench/load.py --http --calls \$n --sequential 3 --no-startup $([ "$MODE" = quick ] && echo --ttft 0.2 --delay 0.4 || echo --ttft 2 --delay 6); done"
step waiting "time.md (bench/waiting.py table), README" \
  "$PY bench/waiting.py $Q"
step replica-throughput "deploy.md (How it scales)" \
  "for i in \$(seq $REPLICA_REPEAT); do $PY bench/replica_throughput.py $([ "$MODE" = quick ] && echo --quick || echo --calls "$REPLICA_CALLS"); done"
step eval-throughput "eval.md (last paragraph)" \
  "$PY bench/eval_throughput.py $Q"
step tune-throughput "tune.md (Measured)" \
  "for i in \$(seq $TUNE_BENCH_REPEAT); do $PY bench/tune_throughput.py $([ "$MODE" = quick ] && echo --quick || echo --delay 0); done"

# 3. The embedded model (a few minutes).
step local-latency "local-model.md (How long a run takes)" \
  "$PY bench/local_latency.py $([ "$MODE" = quick ] && echo --quick || echo --runs "$LOCAL_RUNS")"
step local-parallel "local-model.md (What the parallel slots buy)" \
  "for p in 3 1; do for t in 1 2; do echo \"FUSION_MCP_LOCAL_PARALLEL=\$p FUSION_MCP_LOCAL_THREADS=\$t\"; \
FUSION_MCP_LOCAL_PARALLEL=\$p FUSION_MCP_LOCAL_THREADS=\$t $PY bench/local_parallel.py $Q; done; done"
step demo-fresh-clone "README (make demo), local-model.md (first install)" \
  "rm -rf $WORK/clone && git clone -q $ROOT $WORK/clone && cd $WORK/clone && \
export PIP_NO_CACHE_DIR=\$([ $DEMO_PIP_CACHE = 1 ] && echo 0 || echo 1) && \
/usr/bin/time -f 'make demo: %e s wall' make demo && du -sh --si .venv && \
du -h --si \$(.venv/bin/python -c 'from fusion_mcp.providers.local import resolve_model_path; print(resolve_model_path(\"local\", \"smollm2\"))')"

# 4. The fault suite and real model pace (10-20 minutes).
step faults "security.md (fault suite, hardening rows)" \
  "$PY bench/faults.py $Q"
step host-limit "README (Long runs table), time.md" \
  "$PY bench/host_limit.py $([ "$MODE" = quick ] && echo --quick || echo --runs "$HOST_LIMIT_RUNS")"
step host-limit-before "README (the two 'before' rows)" \
  "if [ -z '$BASELINE' ]; then echo 'BASELINE empty: the before rows were not re-measured'; exit 0; fi; \
git worktree add --detach -f $WORK/baseline $BASELINE >/dev/null && \
$PY bench/host_limit.py --server-path $WORK/baseline $([ "$MODE" = quick ] && echo --quick || echo --runs "$HOST_LIMIT_RUNS" --profiles frontier,fast-with-a-hang)"

# 5. Real runs of the local model on ARC-Easy (long: 13 s an item for eval, ~2 s a call for tune).
step eval-arc-easy "eval.md (Measured: the local ensemble on ARC-Easy)" \
  "if [ $EVAL_LIMIT = 0 ]; then echo 'EVAL_LIMIT=0: not run'; exit 0; fi; \
cmd='$FM eval --dataset arc-easy --limit $EVAL_LIMIT --seed 0 --ensembles local --concurrency 1 --out $WORK/eval-arc'; \
echo \"\$ \$cmd\"; /usr/bin/time -f 'whole command: %e s' \$cmd && echo '# again, from the call cache:' && \
/usr/bin/time -f 'whole command: %e s' \$cmd && cp $WORK/eval-arc/results.md $OUT/eval-arc-easy-results.md && \
$PY -c \"import json, collections; c = collections.Counter(); \
[c.update({(s, o.get('prediction')) for s, o in json.loads(l)['outcomes'].items() if s.startswith('single')}) \
 for l in open('$WORK/eval-arc/items.jsonl')]; print('drafts answering A:', {s: n for (s, a), n in sorted(c.items(), key=str) if a == 'A'}); \
print('drafts naming no letter:', {s: n for (s, a), n in sorted(c.items(), key=str) if a is None}); \
print('items whose gold answer is A:', sum(json.loads(l)['gold'] == 'A' for l in open('$WORK/eval-arc/items.jsonl')))\""
step tune-arc-easy "tune.md (A real run)" \
  "if [ $TUNE_LIMIT = 0 ]; then echo 'TUNE_LIMIT=0: not run'; exit 0; fi; \
cmd='$FM tune -d arc-easy --limit $TUNE_LIMIT --holdout 0.5 -c @docs/tune-local.toml --confirm 2 --concurrency 1 --write arc-local --force --out $WORK/tune-out'; \
echo \"\$ \$cmd\"; /usr/bin/time -f 'first run: %e s' \$cmd && echo '# again, from the call cache:' && \$cmd && \
$FM ensembles | grep -E '^ *(ensemble|arc-local)' && \
$FM ask -e arc-local \"Which gas do plants take in from the air to make food? A. oxygen B. carbon dioxide C. nitrogen D. helium. End with 'Answer: X'.\""

[ "$MODE" = list ] || { echo; echo "summary: $OUT/summary.txt"; grep -vc ' exit 0 ' "$OUT/summary.txt" | sed 's/^/steps that failed: /'; }
