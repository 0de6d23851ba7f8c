# Sourced by scripts/bench.sh and scripts/capacity.sh: the sandbox for one script run, and
# Ctrl-C handling.
# Settings (environment): PORT (4599), CONCURRENCY (workers per function, 4), STATE (the
# sandbox's state folder, .sandbox), OUT (where the files go), BIN (the binaries,
# target/release), DIST (the functions' binaries, target/release/dist), KILL_WORKERS (fault injection, e.g.
# `midstream=0.1`: `sandbox up --kill-workers`), LAMBDA_METRICS (0: the sandbox does not publish
# Lambda's own metrics, `sandbox up --no-lambda-metrics`, to measure what they cost), DELAY
# (what-if, e.g. `downstream=20ms`: `sandbox up --delay`, each invocation that much slower),
# BURN (what-if, e.g. `midstream=5ms`: `sandbox up --burn`, that much CPU in each invocation),
# LEAK (what-if, e.g. `midstream=40MB`: `sandbox up --leak`, each invocation keeps that much),
# CPU_SHARE (1: Lambda's CPU share and memory limit by memory size, `sandbox up --cpu-share`;
# on with PROFILE=aws),
# PROFILE (`aws`: AWS's polling cadence and quotas, `sandbox up --profile aws`), QUOTA_SCALE
# (with PROFILE=aws: every rate quota times this, e.g. 0.1), SHARDS (the stream's shards, the
# CDK app's `shards`).
PORT=${PORT:-4599}
CONCURRENCY=${CONCURRENCY:-4}
STATE=${STATE:-.sandbox}
BIN=${BIN:-target/release}
DIST=${DIST:-target/release/dist}
OUTPUTS="$STATE/outputs.json"

# Ctrl-C or SIGTERM: noted here and acted on between steps. A foreground step gets the signal
# too and stops on its own; the script then stops the sandbox and writes no result. A step that
# handles Ctrl-C itself and exits (loadgen: 105, the collector: 130) is how the script learns of
# it: bash runs no INT trap for a child that did not die of the signal.
interrupted=
trap 'interrupted=1' INT TERM
check_interrupted() { # check_interrupted [the last step's exit code]
  case "${1:-}" in 105 | 130) interrupted=1 ;; esac
  if [ -n "$interrupted" ]; then
    echo "$SCRIPT: interrupted; stopped everything it started, wrote no result" >&2
    exit 130
  fi
}

stop_sandbox() {
  if [ -n "${sandbox:-}" ] && kill -0 "$sandbox" 2>/dev/null; then
    kill -TERM "$sandbox" 2>/dev/null || true
    wait "$sandbox" 2>/dev/null || true
  fi
}

# Starts the sandbox (deploying the CDK app through its edge) in its own session, so that a
# Ctrl-C at the terminal reaches only the foreground step; it is stopped by its PID when the
# script ends, however it ends. Returns once `sandbox wait` says it is ready.
start_sandbox() {
  local faults=() spec
  for spec in ${KILL_WORKERS:-}; do faults+=(--kill-workers "$spec"); done
  [ "${LAMBDA_METRICS:-1}" != 0 ] || faults+=(--no-lambda-metrics)
  for spec in ${DELAY:-}; do faults+=(--delay "$spec"); done
  for spec in ${BURN:-}; do faults+=(--burn "$spec"); done
  for spec in ${LEAK:-}; do faults+=(--leak "$spec"); done
  [ -z "${CPU_SHARE:-}" ] || faults+=(--cpu-share)
  [ -z "${SANDBOX_HOT:-}" ] || faults+=(--hot)
  [ -z "${PROFILE:-}" ] || faults+=(--profile "$PROFILE")
  [ -z "${QUOTA_SCALE:-}" ] || faults+=(--quota-scale "$QUOTA_SCALE")
  mkdir -p "$OUT"
  setsid "$BIN/sandbox" up --deploy --port "$PORT" --concurrency "$CONCURRENCY" \
    --state "$STATE" --dist "$DIST" "${faults[@]}" >"$OUT/sandbox.log" 2>&1 &
  sandbox=$!
  trap stop_sandbox EXIT
  echo "$SCRIPT: starting the sandbox on port $PORT and deploying the CDK app (log: $OUT/sandbox.log)" >&2
  if ! "$BIN/sandbox" wait --state "$STATE" --timeout 240s 2>/dev/null; then
    check_interrupted
    # A bad setting (a profile, a scale, a delay): the sandbox's own line, and exit 2.
    local code=0
    kill -0 "$sandbox" 2>/dev/null || { wait "$sandbox" || code=$?; }
    if [ "$code" = 2 ]; then
      tail -n 1 "$OUT/sandbox.log" >&2
      exit 2
    fi
    tail -n 30 "$OUT/sandbox.log" >&2
    echo "$SCRIPT: the sandbox was not ready (log: $OUT/sandbox.log)" >&2
    exit 1
  fi
  check_interrupted
}
