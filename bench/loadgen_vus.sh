#!/usr/bin/env bash
# `make bench-vus`: loadgen's peak memory by VU count, each VU with its own keep-alive
# connection, against the local bench target (3 s of load each). Stops the target by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
target/release/examples/bench_target 0 1 >"$out" &
target=$!
trap 'kill "$target" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.05; done
addr=$(grep -o '127.0.0.1:[0-9]*' "$out")
# KiB per VU: above the first row's peak (the process's own base), per VU added.
printf '%8s %14s %12s %10s\n' VUs 'peak RSS MiB' 'KiB per VU' requests
base_vus='' base_kib=''
for vus in ${VUS_LIST:-10 1000 10000}; do
  stats=$( { /usr/bin/time -f '%M' target/release/loadgen "http://$addr/" --vus "$vus" --duration 3s \
    --graceful-stop 5s --json >"$out.json"; } 2>&1 | tail -1)
  requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"]["requests_sent"])' "$out.json")
  rm -f "$out.json"
  if [ -z "$base_kib" ]; then base_vus=$vus base_kib=$stats; fi
  awk -v v="$vus" -v k="$stats" -v r="$requests" -v bv="$base_vus" -v bk="$base_kib" 'BEGIN {
    per = (v > bv) ? sprintf("%.1f", (k - bk) / (v - bv)) : "-"
    printf "%8d %14.1f %12s %10d\n", v, k/1024, per, r }'
done
