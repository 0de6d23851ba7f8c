#!/usr/bin/env bash
# `make capacity`: the highest arrival rate the pipeline sustains on this machine, and the hop
# that gives first. Starts the sandbox (deploying the CDK app through its edge), runs the
# capacity search against it, and stops everything it started, also on failure or Ctrl-C.
# Settings (environment): SLO (1s), STEP (each step's load, 20s), START_RATE (20), MAX_RATE
# (5000), TIME_LIMIT (10m), OUT (where the files go, $STATE/capacity), and the sandbox's
# (scripts/lib/sandbox.sh: PORT, CONCURRENCY, STATE, BIN, DIST, KILL_WORKERS).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=capacity
source scripts/lib/sandbox.sh
OUT=${OUT:-$STATE/capacity}
mkdir -p "$OUT"
# Nothing of an earlier search may be read as this one's.
rm -f "$OUT"/capacity.json "$OUT"/capacity.html "$OUT"/*.run.json "$OUT"/*.timestamps.json
start_sandbox

status=0
"$BIN/capacity" --outputs "$OUTPUTS" --slo "${SLO:-1s}" --step "${STEP:-20s}" \
  --start-rate "${START_RATE:-20}" --max-rate "${MAX_RATE:-5000}" \
  --time-limit "${TIME_LIMIT:-10m}" --out "$OUT" || status=$?
check_interrupted
echo "capacity: report $OUT/capacity.html, steps in $OUT, sandbox log $OUT/sandbox.log" >&2
exit "$status"
