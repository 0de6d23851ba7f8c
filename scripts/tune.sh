#!/usr/bin/env bash
# `make tune`: which memory size is cheapest for the speed needed? Starts the sandbox with
# Lambda's CPU share by memory size (deploying the CDK app through its edge), runs `tune`
# against it (one step per size, set through the sandbox's Lambda API), and stops everything
# it started, also on failure or Ctrl-C.
# Settings (environment): SIZES (MB, comma-separated: 128,256,512,1024,1769,3008), FUNCTION
# (all, or upstream, midstream, downstream), RATE (50 per second), STEP (each size's load,
# 20s), SLO (1s), OUT (where the files go, $STATE/tune), and the sandbox's
# (scripts/lib/sandbox.sh: PORT, CONCURRENCY, STATE, BIN, DIST, BURN, DELAY, PROFILE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=tune
source scripts/lib/sandbox.sh
OUT=${OUT:-$STATE/tune}
CPU_SHARE=${CPU_SHARE:-1}
mkdir -p "$OUT"
# Nothing of an earlier tuning may be read as this one's.
rm -f "$OUT"/tune.json "$OUT"/tune.html "$OUT"/*.run.json "$OUT"/*.timestamps.json
# A bad setting is one line and exit 2 before the sandbox starts.
"$BIN/tune" --out "$OUT" --sizes "${SIZES:-128,256,512,1024,1769,3008}" \
  --function "${FUNCTION:-all}" --rate "${RATE:-50}" --step "${STEP:-20s}" --slo "${SLO:-1s}" \
  --check-only
start_sandbox

status=0
"$BIN/tune" --outputs "$OUTPUTS" --out "$OUT" --sizes "${SIZES:-128,256,512,1024,1769,3008}" \
  --function "${FUNCTION:-all}" --rate "${RATE:-50}" --step "${STEP:-20s}" \
  --slo "${SLO:-1s}" | tee "$OUT/tune.txt" || status=$?
check_interrupted "$status"
echo "tune: page $OUT/tune.html, steps in $OUT, sandbox log $OUT/sandbox.log" >&2
exit "$status"
