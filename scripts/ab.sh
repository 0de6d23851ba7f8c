#!/usr/bin/env bash
# `make ab BASE=<git ref>`: is the working tree's pipeline slower than BASE's? Builds both
# versions' functions the same way (the base in a git worktree under the state folder), starts
# one sandbox with hot reload, and runs PAIRS pairs of short runs at a fixed arrival rate, base
# (A) and candidate (B) alternating in a balanced order (AB, BA, AB, ...), swapping the
# functions between runs without a redeploy. Then `collector compare --paired` judges each
# number on the pairs' differences and says the smallest change it could have detected.
# Settings (environment): BASE (required), PAIRS (5), RATE (arrivals per second, 100), DURATION
# (each run, 20s), CANDIDATE_DELAY (e.g. `midstream=10ms`: the candidate's function that much
# slower, to see a known slowdown caught), GATE (e.g. `latency:p(50)=10%`: exit 99 when the
# candidate is slower by more than that beyond the noise), AB_PROFILE (release; dev for tests),
# AB_PREBUILT (a folder of <fn>/bootstrap used as both sides, building nothing: an A/A of those
# binaries, for the tests),
# OUT ($STATE/ab), and the sandbox's (scripts/lib/sandbox.sh: PORT, CONCURRENCY, STATE, BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=ab
root=$PWD
BASE=${BASE:-}
PAIRS=${PAIRS:-5}
RATE=${RATE:-100}
DURATION=${DURATION:-20s}
CANDIDATE_DELAY=${CANDIDATE_DELAY:-}
AB_PROFILE=${AB_PROFILE:-release}
source scripts/lib/sandbox.sh
OUT=$(realpath -m "${OUT:-$STATE/ab}")
FUNCTIONS="upstream midstream downstream"

refuse() { echo "ab: $*" >&2; exit 2; }
[ -n "$BASE" ] || refuse "BASE=<git ref> is required, e.g. make ab BASE=main"
commit=$(git rev-parse --verify --quiet "$BASE^{commit}") || refuse "BASE=$BASE is not a git ref here"
[[ "$PAIRS" =~ ^[0-9]+$ ]] && [ "$PAIRS" -ge 1 ] || refuse "PAIRS=$PAIRS is not a count of pairs"
[[ "$RATE" =~ ^[0-9]+([.][0-9]+)?$ ]] || refuse "RATE=$RATE is not an arrival rate per second"
for spec in $CANDIDATE_DELAY; do
  [[ "$spec" =~ ^(upstream|midstream|downstream)=[0-9]+(us|ms|s)$ ]] ||
    refuse "CANDIDATE_DELAY=$spec is not FUNCTION=DURATION, e.g. midstream=10ms"
done
case "$AB_PROFILE" in release) dir=release ;; dev) dir=debug ;; *) refuse "AB_PROFILE=$AB_PROFILE: release or dev" ;; esac
# A gate that does not parse is refused now, not after the runs: the collector's flag parser
# judges it before it reads any file. (Its output is kept whole first: with pipefail, a pipe
# into `grep -q` takes the collector's own failure as the pipe's.)
if [ -n "${GATE:-}" ]; then
  said=$("$BIN/collector" compare /dev/null /dev/null --fail-if-slower "$GATE" 2>&1 || true)
  if grep -q -- '--fail-if-slower' <<<"$said"; then
    refuse "GATE=$GATE is not METRIC=PERCENT, e.g. latency:p(50)=10%"
  fi
fi

# Both sides' functions, built alike (`-p functions`). The base gets a target folder of its own:
# cargo names a workspace member's build by its place in the workspace, not on disk, so in a
# shared folder the base's worktree would be served the candidate's build as up to date.
mkdir -p "$OUT"
rm -rf "$OUT/runs" "$OUT/compare.html"
mkdir -p "$OUT/runs"
build() { # build SIDE SOURCE TARGET_DIR
  local side=$1 src=$2 target=$3 f
  echo "ab: building the $side's functions ($AB_PROFILE)" >&2
  if ! (cd "$src" && cargo build --locked --profile "$AB_PROFILE" -p functions --bins \
      --target-dir "$target" >"$OUT/build-$side.log" 2>&1); then
    tail -n 20 "$OUT/build-$side.log" >&2 || true
    refuse "the $side's functions do not build (log: $OUT/build-$side.log)"
  fi
  for f in $FUNCTIONS; do
    mkdir -p "$OUT/$side/$f"
    cp "$target/$dir/$f" "$OUT/$side/$f/bootstrap"
  done
}
if [ -n "${AB_PREBUILT:-}" ]; then
  for side in base candidate; do
    for f in $FUNCTIONS; do
      [ -x "$AB_PREBUILT/$f/bootstrap" ] || refuse "AB_PREBUILT: no $AB_PREBUILT/$f/bootstrap"
      mkdir -p "$OUT/$side/$f"
      cp "$AB_PREBUILT/$f/bootstrap" "$OUT/$side/$f/bootstrap"
    done
  done
else
  build candidate "$root" "$root/target"
  base_src=$(realpath -m "$STATE/ab-base-src")
  if [ ! -d "$base_src" ] || [ "$(git -C "$base_src" rev-parse HEAD 2>/dev/null)" != "$commit" ]; then
    git worktree remove --force "$base_src" >/dev/null 2>&1 || rm -rf "$base_src"
    git worktree prune
    git worktree add --detach --force "$base_src" "$commit" >/dev/null 2>&1 ||
      refuse "cannot check out BASE=$BASE in $base_src"
  fi
  build base "$base_src" "$(realpath -m "$STATE/ab-target")"
fi
same=yes
for f in $FUNCTIONS; do
  cmp -s "$OUT/base/$f/bootstrap" "$OUT/candidate/$f/bootstrap" || same=
done
[ -z "$same" ] || echo "ab: the base's and the candidate's functions are the same binaries (an A/A comparison${CANDIDATE_DELAY:+, plus CANDIDATE_DELAY})" >&2
check_interrupted

# Puts SIDE's functions (and the candidate's delay) where the sandbox runs them, and waits until
# every worker has restarted on them.
swap() { # swap SIDE
  local side=$1 f spec before
  before=$(grep -c 'changed; restarting it' "$OUT/sandbox.log" || true)
  for f in $FUNCTIONS; do
    rm -f "$DIST/$f/delay"
  done
  if [ "$side" = candidate ]; then
    for spec in $CANDIDATE_DELAY; do
      echo "${spec#*=}" >"$DIST/${spec%%=*}/delay"
    done
  fi
  for f in $FUNCTIONS; do
    cp "$OUT/$side/$f/bootstrap" "$DIST/$f/bootstrap.tmp"
    mv -f "$DIST/$f/bootstrap.tmp" "$DIST/$f/bootstrap"
  done
  local want=$((before + 3 * CONCURRENCY)) waited=0
  while [ "$(grep -c 'changed; restarting it' "$OUT/sandbox.log" || true)" -lt "$want" ]; do
    sleep 0.2
    waited=$((waited + 1))
    [ "$waited" -lt 150 ] || { echo "ab: the workers did not restart on the $side's functions" >&2; exit 1; }
  done
}

DIST="$OUT/dist"
for f in $FUNCTIONS; do
  mkdir -p "$DIST/$f"
  cp "$OUT/base/$f/bootstrap" "$DIST/$f/bootstrap"
  rm -f "$DIST/$f/delay"
done
SANDBOX_HOT=1 start_sandbox

# One run of SIDE as pair I's: the load at RATE, then the wait for it to drain.
run() { # run I SIDE
  local i=$1 side=$2 name
  name=$(printf 'pair%02d-%s' "$i" "$side")
  swap "$side"
  echo "ab: pair $i of $PAIRS, $side: $RATE/s for $DURATION" >&2
  local status=0
  "$BIN/loadgen" --outputs "$OUTPUTS" --rate "$RATE" --duration "$DURATION" --quiet \
    --run-id "ab-$name-$(date +%s%3N)" --summary-export "$OUT/runs/$name.run.json" >/dev/null || status=$?
  check_interrupted "$status"
  [ "$status" = 0 ] || [ "$status" = 99 ] || exit "$status"
  status=0
  "$BIN/collector" wait --run "$OUT/runs/$name.run.json" --outputs "$OUTPUTS" --no-progress \
    --out "$OUT/runs/$name.json" --poll 1s --quiet 10s --timeout 3m 2>>"$OUT/wait.log" || status=$?
  check_interrupted "$status"
  [ -f "$OUT/runs/$name.json" ] || exit "$((status == 0 ? 1 : status))"
}

bases=() candidates=()
for i in $(seq 1 "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then order="base candidate"; else order="candidate base"; fi
  for side in $order; do run "$i" "$side"; done
  bases+=("$OUT/runs/$(printf 'pair%02d-base' "$i").json")
  candidates+=("$OUT/runs/$(printf 'pair%02d-candidate' "$i").json")
done
check_interrupted

echo "ab: $BASE ($(git rev-parse --short "$commit")) against the working tree, $PAIRS pairs" >&2
status=0
"$BIN/collector" compare --paired "$(IFS=,; echo "${bases[*]}")" "$(IFS=,; echo "${candidates[*]}")" \
  --out "$OUT/compare.html" ${GATE:+--fail-if-slower "$GATE"} || status=$?
check_interrupted "$status"
if [ -f "$OUT/compare.html" ]; then
  echo "ab: comparison $OUT/compare.html, runs in $OUT/runs, sandbox log $OUT/sandbox.log" >&2
else
  echo "ab: no comparison written; runs in $OUT/runs, sandbox log $OUT/sandbox.log" >&2
fi
exit "$status"
