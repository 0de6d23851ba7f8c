#!/usr/bin/env bash
# `make bench-smoke`: scripts/bench.sh, the main job, end to end on debug builds with a tiny
# schedule, then once more with Ctrl-C during the load. Checks what a user sees: the tables, the
# report and the audit of a whole run (exit 0); then the "interrupted" line, exit 130, no report,
# and nothing left listening; then a run whose midstream leaks past its memory size: workers
# killed as Lambda kills them, every batch retried, nothing lost. Run from the repository root
# after the debug build.
set -euo pipefail
SMOKE=bench-smoke
source scripts/tests/lib.sh

# A whole run.
port=$(free_port)
BIN=target/debug DIST="$work/dist" STATE="$work/state" OUT="$work/out" PORT=$port CONCURRENCY=1 \
  VUS=2 DURATION=3s bash scripts/bench.sh >"$work/said" 2>"$work/err" ||
  fail "exit $? on a whole run: $(tail -n 20 "$work/err")"
grep -q '^Latency per request' "$work/said" || fail "no latency table: $(cat "$work/said")"
grep -q '┆ complete ' "$work/said" || fail "not complete: $(cat "$work/said")"
for f in run.json timestamps.json audit.json report.html; do
  [ -s "$work/out/$f" ] || fail "no $f"
done
python3 -c 'import json, sys; a = json.load(open(sys.argv[1])); assert a["accepted"] > 0 and a["lost"] == 0, a' \
  "$work/out/audit.json" || fail "the audit found a loss"

# Ctrl-C during the load: the terminal signals the script's whole process group.
port=$(free_port)
BIN=target/debug DIST="$work/dist" STATE="$work/state2" OUT="$work/out2" PORT=$port CONCURRENCY=1 \
  VUS=2 DURATION=60s setsid bash scripts/bench.sh >"$work/said2" 2>"$work/err2" &
script=$!
for _ in $(seq 600); do
  grep -q '^bench: 2 VUs for 60s' "$work/err2" && break
  kill -0 "$script" 2>/dev/null || fail "ended before the load: $(tail -n 20 "$work/err2")"
  sleep 0.5
done
sleep 2
kill -INT -- "-$script"
code=0
wait "$script" || code=$?
[ "$code" = 130 ] || fail "Ctrl-C during the load: exit $code, not 130: $(tail -n 5 "$work/err2")"
grep -q '^bench: interrupted; stopped everything it started, wrote no result' "$work/err2" ||
  fail "no interrupted line: $(tail -n 5 "$work/err2")"
[ ! -e "$work/out2/report.html" ] || fail "a report was written for an interrupted run"
if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
  fail "port $port still answers after the interrupted run"
fi

# Lambda's memory limit: midstream leaks 60 MB an invocation at 256 MB, so its workers are
# killed for memory every few batches; each batch is retried on a fresh worker and nothing is
# lost.
port=$(free_port)
BIN=target/debug DIST="$work/dist" STATE="$work/state3" OUT="$work/out3" PORT=$port CONCURRENCY=1 \
  VUS=2 DURATION=4s CPU_SHARE=1 LEAK=midstream=60MB bash scripts/bench.sh >"$work/said3" 2>"$work/err3" ||
  fail "exit $? on a run with a leaking midstream: $(tail -n 20 "$work/err3")"
grep -q 'Runtime exited with error: signal: killed (out of memory: over the function.s 256 MB)' \
  "$work/out3/sandbox.log" || fail "no worker killed for memory: $(grep -i 'midstream' "$work/out3/sandbox.log" | tail -n 5)"
python3 -c 'import json, sys; a = json.load(open(sys.argv[1])); assert a["accepted"] > 0 and a["lost"] == 0, a' \
  "$work/out3/audit.json" || fail "the audit found a loss after the memory kills"
echo "bench-smoke: a whole run measured and audited; Ctrl-C during the load: exit 130, the line, no report; workers killed for memory, nothing lost"
