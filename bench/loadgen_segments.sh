#!/usr/bin/env bash
# `make bench-segments`: one loadgen process against N processes with 1/N each (`--segment`,
# started together with `--start-at`, merged with `loadgen merge`), side by side against the
# local bench target, REPS times: total requests, scheduled starts, the achieved rate and the
# percentiles, and what merging costs. Stops the target by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2000} DURATION=${DURATION:-10s} WORKERS=${WORKERS:-4} REPS=${REPS:-3}
work=$(mktemp -d)
target/release/examples/bench_target 0 1 >"$work/target.out" &
target=$!
trap 'kill "$target" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q listening "$work/target.out" && break; sleep 0.05; done
url="http://$(grep -o '127.0.0.1:[0-9]*' "$work/target.out")/"
load=(--rate "$RATE" --duration "$DURATION" --max-vus 200 --quiet --graceful-stop 5s)
for rep in $(seq 1 "$REPS"); do
  target/release/loadgen "$url" "${load[@]}" --run-id "one-$rep" --summary-export "$work/one-$rep.json" >/dev/null
  at=$(( $(date +%s%3N) + 1000 ))
  pids=()
  for i in $(seq 1 "$WORKERS"); do
    target/release/loadgen "$url" "${load[@]}" --run-id "split-$rep" --segment "$i/$WORKERS" \
      --start-at "$at" --summary-export "$work/split-$rep-$i.json" >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  start=$(date +%s%N)
  target/release/loadgen merge "$work"/split-"$rep"-*.json --summary-export "$work/merged-$rep.json" >/dev/null
  echo $(( ($(date +%s%N) - start) / 1000000 )) >"$work/merge-$rep.ms"
done
python3 - "$work" "$REPS" "$WORKERS" <<'PY'
import json, sys, statistics
work, reps, workers = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def row(path):
    f = json.load(open(path))
    run, d = f["run"], f["metrics"]["http_req_duration"]
    seconds = (run["end_ms"] - run["start_ms"]) / 1000
    return [run["requests_sent"], run.get("scheduled_iterations"), run["requests_sent"] / seconds,
            d["med"], d["p(90)"], d["p(99)"]]
print(f"{'run':<24} {'sent':>7} {'scheduled':>9} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}")
rows = {"one process": [], f"{workers} merged": []}
for rep in range(1, reps + 1):
    for name, path in [("one process", f"{work}/one-{rep}.json"), (f"{workers} merged", f"{work}/merged-{rep}.json")]:
        r = row(path)
        rows[name].append(r)
        print(f"{name + ' #' + str(rep):<24} {r[0]:>7} {r[1]:>9} {r[2]:>8.0f} {r[3]:>7.3f} {r[4]:>7.3f} {r[5]:>7.3f}")
for name, rs in rows.items():
    med = [statistics.median(c) for c in zip(*rs)]
    print(f"{name + ' (median)':<24} {med[0]:>7.0f} {med[1]:>9.0f} {med[2]:>8.0f} {med[3]:>7.3f} {med[4]:>7.3f} {med[5]:>7.3f}")
ms = [int(open(f"{work}/merge-{rep}.ms").read()) for rep in range(1, reps + 1)]
print(f"loadgen merge of {workers} run files: median {statistics.median(ms)} ms (runs: {ms})")
PY
