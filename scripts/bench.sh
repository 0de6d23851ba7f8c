#!/usr/bin/env bash
# `make bench`: the pipeline on this machine, measured end to end.
# Starts the sandbox (deploying the CDK app through its edge), runs loadgen against its API,
# waits with the collector until every accepted request has come through, prints the tables,
# writes the HTML report, and stops everything it started, also on failure or Ctrl-C.
# Settings (environment): VUS (10), DURATION (60s), PORT (4599), CONCURRENCY (workers per
# function, 4), OUT (where the files go, .sandbox/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
VUS=${VUS:-10}
DURATION=${DURATION:-60s}
PORT=${PORT:-4599}
CONCURRENCY=${CONCURRENCY:-4}
OUT=${OUT:-.sandbox/bench}
mkdir -p "$OUT"

target/release/sandbox up --deploy --port "$PORT" --concurrency "$CONCURRENCY" >"$OUT/sandbox.log" 2>&1 &
sandbox=$!
stop_sandbox() {
  if kill -0 "$sandbox" 2>/dev/null; then
    kill -TERM "$sandbox" 2>/dev/null || true
    wait "$sandbox" 2>/dev/null || true
  fi
}
trap stop_sandbox EXIT
trap 'exit 130' INT TERM

echo "bench: starting the sandbox on port $PORT and deploying the CDK app (log: $OUT/sandbox.log)" >&2
for _ in $(seq 1 240); do
  [ -f .sandbox/outputs.json ] && break
  if ! kill -0 "$sandbox" 2>/dev/null; then
    tail -n 30 "$OUT/sandbox.log" >&2
    echo "bench: the sandbox stopped before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
[ -f .sandbox/outputs.json ] || { echo "bench: the sandbox was not ready after 120 s" >&2; exit 1; }

echo "bench: $VUS VUs for $DURATION" >&2
target/release/loadgen --outputs .sandbox/outputs.json --vus "$VUS" --duration "$DURATION" \
  --summary-export "$OUT/run.json"
status=0
target/release/collector wait --run "$OUT/run.json" --endpoint-url "http://localhost:$PORT" \
  --out "$OUT/timestamps.json" --poll 1s --quiet 15s --timeout 10m || status=$?
target/release/collector stats "$OUT/timestamps.json" --run "$OUT/run.json"
target/release/collector report "$OUT/timestamps.json" --run "$OUT/run.json" --out "$OUT/report.html"
echo "bench: report $OUT/report.html (open it in a browser)" >&2
echo "bench: run file $OUT/run.json, latency export $OUT/timestamps.json, sandbox log $OUT/sandbox.log" >&2
exit "$status"
