#!/usr/bin/env bash
# `make tune-smoke`: scripts/tune.sh end to end on debug builds with a tiny schedule (two sizes,
# 4 s each, midstream burning 20 ms of CPU per invocation) against a sandbox with Lambda's CPU
# share. Checks what a user sees: a bad size refused before the sandbox starts (one line, exit
# 2); each step with every function's invocations and cold starts; midstream slower at 128 MB
# than at 1,769 MB; the recommendation; the page; the functions set back to their sizes. Run
# from the repository root after the debug build.
set -euo pipefail
SMOKE=tune-smoke
source scripts/tests/lib.sh

status=0
SIZES=64,256 BIN=target/debug STATE="$work/state" OUT="$work/out" bash scripts/tune.sh \
  >/dev/null 2>"$work/refused" || status=$?
[ "$status" = 2 ] || fail "SIZES=64: exit $status, not 2"
[ "$(wc -l <"$work/refused")" = 1 ] || fail "SIZES=64: not one line: $(cat "$work/refused")"
grep -q "outside Lambda's 128 to 10240 MB" "$work/refused" || fail "$(cat "$work/refused")"
[ ! -e "$work/state/outputs.json" ] || fail "SIZES=64 started a sandbox"

BIN=target/debug DIST="$work/dist" STATE="$work/state" OUT="$work/out" PORT=$(free_port) \
  CONCURRENCY=1 SIZES=1769,128 STEP=4s RATE=10 SLO=5s BURN=midstream=20ms \
  bash scripts/tune.sh >"$work/said" 2>"$work/err" ||
  fail "exit $?: $(tail -n 20 "$work/err")"
grep -q '^tune: cheapest within the SLO of 5000 ms: ' "$work/said" || fail "$(cat "$work/said")"
grep -q '^tune: fastest: ' "$work/said" || fail "$(cat "$work/said")"
python3 - "$work/out/tune.json" <<'PY' || fail "tune.json: $(cat "$work/out/tune.json")"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["version"] == 1 and [s["memory_mb"] for s in f["steps"]] == [128, 1769], f["steps"]
assert f["current_mb"] == {"upstream": 256, "midstream": 256, "downstream": 256}, f["current_mb"]
midstream = {}
for s in f["steps"]:
    assert s["load"]["lost"] == 0 and s["load"]["processed"] > 0, s["load"]
    roles = {x["role"]: x for x in s["functions"]}
    assert sorted(roles) == ["downstream", "midstream", "upstream"], roles
    for x in roles.values():
        assert x["memory_mb"] == s["memory_mb"] and x["invocations"] > 0 and x["cold_starts"] >= 1, x
        assert x["billed_gb_seconds"] > 0, x
    assert s["cost_per_1000_loops"] > 0, s
    # 40 loops a step: too few above the p99 for its interval, which is said, not made up.
    assert s["p99_noise_ms"] is None, s
    midstream[s["memory_mb"]] = roles["midstream"]["duration_p50_ms"]
# 20 ms of CPU at 128 MB's share (7 % of a core) takes about 276 ms; at 1,769 MB about 20 ms.
assert midstream[128] > 150 and midstream[128] > 3 * midstream[1769], midstream
assert f["fastest"]["memory_mb"] == 1769, f["fastest"]
PY
grep -q 'id="cost-vs-p99"' "$work/out/tune.html" || fail "no chart in tune.html"
# Set back to the stack's 256 MB: the workers were replaced for it.
grep -q 'the memory size (256 MB) changed; restarting it' "$work/out/sandbox.log" ||
  fail "the sizes were not set back: $(grep 'memory size' "$work/out/sandbox.log")"
echo "tune-smoke: ok"
