#!/usr/bin/env bash
# `make bench-lambda`: a run from WORKERS loadgen workers on Lambda (the sandbox's), merged into
# one: starts the sandbox with the worker function deployed (LOADGEN_WORKER=true), runs
# `loadgen --lambda WORKERS` through the sandbox's Lambda Invoke API, waits with the collector
# until every accepted request has come through, audits the table, prints the tables, and stops
# everything it started, also on failure or Ctrl-C.
# Settings (environment): WORKERS (4), RATE (100 per second, all workers together), DURATION
# (30s), MAX_VUS (40), OUT (where the files go, $STATE/lambda), and the sandbox's
# (scripts/lib/sandbox.sh: PORT, CONCURRENCY, STATE, BIN, DIST, KILL_WORKERS); CONCURRENCY is at
# least WORKERS, so that every worker has a process.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=bench-lambda
WORKERS=${WORKERS:-4}
source scripts/lib/sandbox.sh
CONCURRENCY=$(( CONCURRENCY > WORKERS ? CONCURRENCY : WORKERS ))
OUT=${OUT:-$STATE/lambda}
mkdir -p "$OUT"
rm -f "$OUT/run.json" "$OUT/timestamps.json" "$OUT/audit.json"
export LOADGEN_WORKER=true
start_sandbox

echo "bench-lambda: $WORKERS workers, ${RATE:-100}/s for ${DURATION:-30s}" >&2
status=0
env -u AWS_PROFILE AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "$BIN/loadgen" --outputs "$OUTPUTS" --lambda "$WORKERS" --rate "${RATE:-100}" \
  --duration "${DURATION:-30s}" --max-vus "${MAX_VUS:-40}" --summary-export "$OUT/run.json" \
  || status=$?
check_interrupted
[ "$status" = 0 ] || [ "$status" = 99 ] || exit "$status"
"$BIN/collector" wait --run "$OUT/run.json" --outputs "$OUTPUTS" \
  --out "$OUT/timestamps.json" --poll 1s --quiet 15s --timeout 10m || status=$?
check_interrupted
[ -f "$OUT/timestamps.json" ] || exit "$((status == 0 ? 1 : status))"
audited=0
"$BIN/collector" audit --run "$OUT/run.json" --outputs "$OUTPUTS" --out "$OUT/audit.json" \
  || audited=$?
[ "$status" != 0 ] || status=$audited
check_interrupted
"$BIN/collector" stats "$OUT/timestamps.json" --run "$OUT/run.json"
echo "bench-lambda: run file $OUT/run.json, latency export $OUT/timestamps.json, sandbox log $OUT/sandbox.log" >&2
exit "$status"
