#!/usr/bin/env python3
"""`collector stats` against pandas on a 24-hour per-second export (86,400 rows).

Writes a latency export (contract format) with 86,400 per-second rows and a bucket histogram,
and the same averages as the AWS sample's bare JSON array. Then times, 10 runs each, median:
  - `collector stats FILE --json` (the whole process: read, parse, statistics, output);
  - pandas as the AWS sample used it: a fresh `python` that loads the file and prints
    describe(percentiles=[.9, .95, .99]) (import included), and the same work timed inside
    Python after the import (pandas' best case).

Usage: bench/collector_vs_pandas.py   (run it through `make bench-collector`)
"""

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTOR = os.path.join(ROOT, "target", "release", "collector")
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
RUNS = 10
PANDAS = "import json, sys, pandas as pd; print(pd.Series(json.load(open(sys.argv[1]))).describe(percentiles=[.9, .95, .99]))"
PANDAS_EXPORT = ("import json, sys, pandas as pd; "
                 "df = pd.DataFrame(json.load(open(sys.argv[1]))['per_second']); "
                 "print(df['average_ms'].describe(percentiles=[.9, .95, .99]))")
IN_PROCESS = """
import json, sys, time, pandas as pd
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    d = pd.DataFrame(json.load(open(sys.argv[1]))['per_second'])['average_ms'].describe(percentiles=[.9, .95, .99])
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2])
"""


def median_wall(argv):
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    for path in (COLLECTOR, PYTHON):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `make bench-collector`")
    rng = random.Random(7)
    start = 1_795_680_000_000
    rows = []
    histogram = {}
    for i in range(86_400):
        count = rng.randint(100, 200)
        low = rng.uniform(40, 80)
        high = low + rng.uniform(50, 900)
        average = low + (high - low) * rng.uniform(0.2, 0.5)
        rows.append({"timestamp_ms": start + i * 1000, "count": count, "average_ms": average,
                     "minimum_ms": low, "maximum_ms": high})
    total = sum(r["count"] for r in rows)
    export = {
        "version": 1,
        "run": {"run_id": "day", "namespace": "ServerlessDataProcessingPipeline/Latencies",
                "window_start_ms": start, "window_end_ms": start + 86_400_000, "expected": total,
                "processed": total, "state": "complete", "vus": 10, "load_start_ms": start,
                "load_end_ms": start + 86_400_000},
        "latency": {"count": total, "sum_ms": sum(r["count"] * r["average_ms"] for r in rows),
                    "min_ms": min(r["minimum_ms"] for r in rows), "max_ms": max(r["maximum_ms"] for r in rows)},
        "per_second": rows,
        "histogram": [{"lower_ms": 0, "upper_ms": 0, "count": total}],
        "hops": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        export_path = os.path.join(tmp, "day.json")
        array_path = os.path.join(tmp, "day-averages.json")
        with open(export_path, "w") as f:
            json.dump(export, f)
        with open(array_path, "w") as f:
            json.dump([r["average_ms"] for r in rows], f)
        print(f"86,400 per-second rows; export {os.path.getsize(export_path) / 1e6:.1f} MB, "
              f"bare array {os.path.getsize(array_path) / 1e6:.1f} MB; median of {RUNS} runs\n")
        print("| what | input | median time |")
        print("| --- | --- | ---: |")
        for name, argv, which in (
            ("`collector stats --json` (process)", [COLLECTOR, "stats", export_path, "--json"], "export"),
            ("`collector stats --json` (process)", [COLLECTOR, "stats", array_path, "--json"], "bare array"),
            ("pandas describe (fresh python, import included)", [PYTHON, "-c", PANDAS_EXPORT, export_path], "export"),
            ("pandas describe (fresh python, import included)", [PYTHON, "-c", PANDAS, array_path], "bare array"),
        ):
            print(f"| {name} | {which} | {median_wall(argv) * 1000:.1f} ms |", flush=True)
        inner = subprocess.run([PYTHON, "-c", IN_PROCESS, export_path, str(RUNS)], check=True,
                               capture_output=True, text=True).stdout.strip()
        print(f"| pandas load + describe inside python (import excluded) | export | {float(inner) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
