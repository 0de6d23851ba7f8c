#!/usr/bin/env bash
# `make bench`: the pipeline on this machine, measured end to end.
# Starts the sandbox (deploying the CDK app through its edge), runs loadgen against its API,
# waits with the collector until every accepted request has come through, audits the table
# against the accepted ids, prints the tables, writes the HTML report, and stops everything it
# started, also on failure or Ctrl-C.
# Settings (environment): VUS (10), DURATION (60s), RATE (an arrival rate per second instead of
# VUs looping: `loadgen --rate`, with at most VUS VUs), OUT (where the files go, $STATE/bench),
# STACK_NAME (PipelineStack), BASELINE (a latency export, or several comma-separated, to compare
# this run with: `collector compare`), GATE (with BASELINE: fail, exit 99, when e.g.
# `latency:p(99)=10%` got slower by more than that beyond the noise), and the sandbox's (scripts/lib/sandbox.sh: PORT, CONCURRENCY,
# STATE, BIN, DIST, KILL_WORKERS).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=bench
VUS=${VUS:-10}
BASELINE=${BASELINE:-}
DURATION=${DURATION:-60s}
source scripts/lib/sandbox.sh
OUT=${OUT:-$STATE/bench}
mkdir -p "$OUT"
# A baseline must exist, and must not be the export this run replaces.
for f in ${BASELINE//,/ }; do
  [ -f "$f" ] || { echo "bench: BASELINE: $f not found" >&2; exit 2; }
  if [ "$(realpath "$f")" = "$(realpath -m "$OUT/timestamps.json")" ]; then
    echo "bench: BASELINE: $f is the export this run replaces; copy it elsewhere first" >&2
    exit 2
  fi
done
# Nothing of an earlier run may be read as this run's.
rm -f "$OUT/run.json" "$OUT/timestamps.json" "$OUT/audit.json" "$OUT/report.html" \
  "$OUT/compare.html"
start_sandbox

load=(--vus "$VUS")
if [ -n "${RATE:-}" ]; then
  load+=(--rate "$RATE")
  echo "bench: $RATE requests a second (at most $VUS VUs) for $DURATION" >&2
else
  echo "bench: $VUS VUs for $DURATION" >&2
fi
status=0
"$BIN/loadgen" --outputs "$OUTPUTS" "${load[@]}" --duration "$DURATION" \
  --summary-export "$OUT/run.json" || status=$?
check_interrupted "$status"
[ "$status" = 0 ] || [ "$status" = 99 ] || exit "$status"
status=0
"$BIN/collector" wait --run "$OUT/run.json" --outputs "$OUTPUTS" \
  --out "$OUT/timestamps.json" --poll 1s --quiet 15s --timeout 10m || status=$?
check_interrupted "$status"
[ -f "$OUT/timestamps.json" ] || exit "$((status == 0 ? 1 : status))"
audited=0
"$BIN/collector" audit --run "$OUT/run.json" --outputs "$OUTPUTS" \
  --out "$OUT/audit.json" || audited=$?
[ "$status" != 0 ] || status=$audited
check_interrupted "$audited"
"$BIN/collector" stats "$OUT/timestamps.json" --run "$OUT/run.json"
"$BIN/collector" report "$OUT/timestamps.json" --run "$OUT/run.json" --out "$OUT/report.html"
if [ -n "${BASELINE:-}" ]; then
  echo "bench: this run against the baseline $BASELINE" >&2
  compared=0
  "$BIN/collector" compare "$BASELINE" "$OUT/timestamps.json" --out "$OUT/compare.html" \
    ${GATE:+--fail-if-slower "$GATE"} || compared=$?
  [ "$status" != 0 ] || status=$compared
fi
echo "bench: report $OUT/report.html (open it in a browser)" >&2
echo "bench: run file $OUT/run.json, latency export $OUT/timestamps.json, audit $OUT/audit.json, sandbox log $OUT/sandbox.log" >&2
exit "$status"
