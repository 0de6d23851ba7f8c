#!/usr/bin/env python3
"""How often `make ab`'s verdicts are right, from recorded real runs.

`make ab PAIRS=N OUT=dir` leaves N pairs of runs in dir/runs (pairNN-base.json,
pairNN-candidate.json). Each trial here is what one `make ab` with PAIRS=K would have judged:
K of the recorded pairs, compared with the real `collector compare --paired`. For identical
builds (A/A) every verdict other than "no significant change" is false; for a known slowdown
(A/B) "slower" is a detection.

    bench/ab_trials.py DIR [--pairs 5] [--trials 10] [--seed 1] [--collector target/release/collector]

Prints, for each row of interest, how many trials said each verdict, and the median minimum
detectable effect. With --trials 0 every K-subset of the pairs is a trial (they overlap, so they
are not independent: the rate is an estimate, not a count of separate experiments).
"""

import argparse
import itertools
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROWS = [
    "latency:p(50)",
    "latency:p(99)",
    "ClientToKinesisLatency:p(50)",
    "KinesisToStoreLatency:p(50)",
    "StoreToDownstreamLatency:p(50)",
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--collector", default="target/release/collector")
    args = parser.parse_args()
    runs = args.dir / "runs"
    pairs = sorted({p.name[:6] for p in runs.glob("pair*-base.json")})
    if len(pairs) < args.pairs:
        sys.exit(f"{len(pairs)} pairs recorded in {runs}, fewer than --pairs {args.pairs}")
    subsets = list(itertools.combinations(pairs, args.pairs))
    if args.trials:
        subsets = random.Random(args.seed).sample(subsets, min(args.trials, len(subsets)))
    verdicts = {row: {} for row in ROWS}
    mdes = {row: [] for row in ROWS}
    for subset in subsets:
        base = ",".join(str(runs / f"{p}-base.json") for p in subset)
        candidate = ",".join(str(runs / f"{p}-candidate.json") for p in subset)
        out = subprocess.run([args.collector, "compare", "--paired", "--json", base, candidate],
                             capture_output=True, text=True, check=True).stdout
        for row in json.loads(out)["rows"]:
            if row["metric"] in verdicts:
                verdict = row["verdict"]
                verdicts[row["metric"]][verdict] = verdicts[row["metric"]].get(verdict, 0) + 1
                if row.get("mde_pct") is not None:
                    mdes[row["metric"]].append(row["mde_pct"])
    print(f"{len(subsets)} trials of {args.pairs} pairs from the {len(pairs)} recorded in {runs}")
    for row in ROWS:
        counts = ", ".join(f"{v} {n}" for v, n in sorted(verdicts[row].items()))
        mde = f"{statistics.median(mdes[row]):.1f} %" if mdes[row] else "-"
        print(f"{row:32} {counts:60} median detectable {mde}")


if __name__ == "__main__":
    main()
