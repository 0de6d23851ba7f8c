#!/usr/bin/env python3
"""What pushing live to Prometheus costs: loadgen and k6, each with and without
`-o experimental-prometheus-rw`, in turn, against one fast local target.

Each run POSTs the pipeline's payload with 10 VUs for 10 s to `bench_target` (1 worker thread) on
127.0.0.1; the pushes go to a real Prometheus (Debian's, with its remote-write receiver) on
another loopback port, every second (K6_PROMETHEUS_RW_PUSH_INTERVAL=1s: five times k6's default
rate, the harsher case). The four variants run in turn, ROUNDS times, so that the machine's
noise falls on all of them alike; the table gives each variant's median requests per second and
CPU seconds (user + system, from wait4) per 1,000 requests, and the push's cost for each tool:
the medians' ratio, with the spread of the per-round ratios.

Usage: bench/push_cost.py [--rounds 3] [--duration 10] [--vus 10]
Run it through `make bench-push`, which builds and installs what it needs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadgen_vs  # noqa: E402  (the target, the tools' runners)

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
PUSH = ("-o", "experimental-prometheus-rw")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prometheus(tmp):
    port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--web.enable-remote-write-receiver"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}/api/v1/write"
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit("prometheus did not start")
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--vus", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target, url = loadgen_vs.start_target()
        prometheus, write_url = start_prometheus(tmp)
        env = {"K6_PROMETHEUS_RW_SERVER_URL": write_url, "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s"}
        os.environ.update(env)
        variants = {
            "loadgen": lambda: loadgen_vs.loadgen(url, args.vus, args.duration, tmp),
            "loadgen -o experimental-prometheus-rw": lambda: loadgen_vs.loadgen(
                url, args.vus, args.duration, tmp, PUSH),
            "k6": lambda: loadgen_vs.k6(url, args.vus, args.duration, tmp),
            "k6 -o experimental-prometheus-rw": lambda: loadgen_vs.k6(
                url, args.vus, args.duration, tmp, PUSH),
        }
        results = {name: [] for name in variants}
        try:
            for round_ in range(args.rounds):
                for name, run in variants.items():
                    r = run()
                    results[name].append(r)
                    print(f"round {round_ + 1} {name}: {r['requests'] / args.duration:.0f} req/s, "
                          f"{r['cpu'] * 1000 / r['requests']:.4f} CPU s/1k", file=sys.stderr)
        finally:
            prometheus.kill()
            prometheus.wait()
            target.kill()
            target.wait()
    rate = lambda r: r["requests"] / args.duration  # noqa: E731
    cpu = lambda r: r["cpu"] * 1000 / r["requests"]  # noqa: E731
    print(f"| variant | req/s (median of {args.rounds}) | CPU s per 1k requests |")
    print("| --- | ---: | ---: |")
    for name, runs in results.items():
        print(f"| {name} | {statistics.median(map(rate, runs)):,.0f} | "
              f"{statistics.median(map(cpu, runs)):.4f} |")
    print()
    for tool in ("loadgen", "k6"):
        plain, pushing = results[tool], results[f"{tool} -o experimental-prometheus-rw"]
        ratios = [rate(p) / rate(q) for p, q in zip(pushing, plain)]
        cpu_ratios = [cpu(p) / cpu(q) for p, q in zip(pushing, plain)]
        print(f"{tool}: pushing gives {100 * (statistics.median(ratios) - 1):+.1f} % req/s "
              f"(rounds {', '.join(f'{100 * (r - 1):+.1f}' for r in ratios)}), "
              f"{100 * (statistics.median(cpu_ratios) - 1):+.1f} % CPU per request "
              f"(rounds {', '.join(f'{100 * (r - 1):+.1f}' for r in cpu_ratios)})")


if __name__ == "__main__":
    main()
