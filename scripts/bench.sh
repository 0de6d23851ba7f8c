#!/usr/bin/env bash
# `make bench`: the pipeline on this machine, measured end to end.
# Starts the sandbox (deploying the CDK app through its edge), runs loadgen against its API,
# waits with the collector until every accepted request has come through, audits the table
# against the accepted ids, prints the tables, writes the HTML report, and stops everything it
# started, also on failure or Ctrl-C.
# Settings (environment): VUS (10), DURATION (60s), PORT (4599), CONCURRENCY (workers per
# function, 4), STATE (the sandbox's state folder, .sandbox), OUT (where the files go,
# $STATE/bench), STACK_NAME (PipelineStack), KILL_WORKERS (fault injection, e.g.
# `midstream=0.1`: `sandbox up --kill-workers`).
set -euo pipefail
cd "$(dirname "$0")/.."
VUS=${VUS:-10}
DURATION=${DURATION:-60s}
PORT=${PORT:-4599}
CONCURRENCY=${CONCURRENCY:-4}
STATE=${STATE:-.sandbox}
OUT=${OUT:-$STATE/bench}
OUTPUTS="$STATE/outputs.json"
faults=()
for spec in ${KILL_WORKERS:-}; do faults+=(--kill-workers "$spec"); done
mkdir -p "$OUT"
# Nothing of an earlier run may be read as this run's.
rm -f "$OUT/run.json" "$OUT/timestamps.json" "$OUT/audit.json" "$OUT/report.html"

# Ctrl-C or SIGTERM: noted here and acted on between steps. A foreground step gets the signal
# too and stops on its own (loadgen still prints its summary); the script then stops the
# sandbox and writes no report.
interrupted=
trap 'interrupted=1' INT TERM
check_interrupted() {
  if [ -n "$interrupted" ]; then
    echo "bench: interrupted; stopped everything it started, wrote no report" >&2
    exit 130
  fi
}

# The sandbox runs in its own session, so that a Ctrl-C at the terminal reaches only the
# foreground step; it is stopped by its PID when the script ends, however it ends.
setsid target/release/sandbox up --deploy --port "$PORT" --concurrency "$CONCURRENCY" \
  --state "$STATE" "${faults[@]}" >"$OUT/sandbox.log" 2>&1 &
sandbox=$!
stop_sandbox() {
  if kill -0 "$sandbox" 2>/dev/null; then
    kill -TERM "$sandbox" 2>/dev/null || true
    wait "$sandbox" 2>/dev/null || true
  fi
}
trap stop_sandbox EXIT

echo "bench: starting the sandbox on port $PORT and deploying the CDK app (log: $OUT/sandbox.log)" >&2
# Ready when it has written the outputs file (whole: it is renamed into place).
for _ in $(seq 1 480); do
  check_interrupted
  [ -f "$OUTPUTS" ] && break
  if ! kill -0 "$sandbox" 2>/dev/null; then
    tail -n 30 "$OUT/sandbox.log" >&2
    echo "bench: the sandbox stopped before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
[ -f "$OUTPUTS" ] || { echo "bench: the sandbox was not ready after 240 s" >&2; exit 1; }

echo "bench: $VUS VUs for $DURATION" >&2
status=0
target/release/loadgen --outputs "$OUTPUTS" --vus "$VUS" --duration "$DURATION" \
  --summary-export "$OUT/run.json" || status=$?
check_interrupted
[ "$status" = 0 ] || [ "$status" = 99 ] || exit "$status"
status=0
target/release/collector wait --run "$OUT/run.json" --outputs "$OUTPUTS" \
  --out "$OUT/timestamps.json" --poll 1s --quiet 15s --timeout 10m || status=$?
check_interrupted
[ -f "$OUT/timestamps.json" ] || exit "$((status == 0 ? 1 : status))"
audited=0
target/release/collector audit --run "$OUT/run.json" --outputs "$OUTPUTS" \
  --out "$OUT/audit.json" || audited=$?
[ "$status" != 0 ] || status=$audited
check_interrupted
target/release/collector stats "$OUT/timestamps.json" --run "$OUT/run.json"
target/release/collector report "$OUT/timestamps.json" --run "$OUT/run.json" --out "$OUT/report.html"
echo "bench: report $OUT/report.html (open it in a browser)" >&2
echo "bench: run file $OUT/run.json, latency export $OUT/timestamps.json, audit $OUT/audit.json, sandbox log $OUT/sandbox.log" >&2
exit "$status"
