#!/usr/bin/env python3
"""loadgen side by side with wrk, oha, k6, Locust and Artillery against one fast local target.

Each tool POSTs the pipeline's JSON payload with 10 connections (VUs, users) for 10 s to the same
`bench_target` (1 worker thread) on 127.0.0.1. For each tool: requests per second (requests over
the 10 s it was told to run), CPU seconds (user + system, from wait4, its child processes
included) per 1,000 requests, and peak RSS. Then loadgen's and oha's peak RSS at 100k and 1M
requests, to show whether memory grows with the run.

Usage: bench/loadgen_vs.py [--duration 10] [--vus 10] [--skip-memory]
Run it through `make bench-loadgen`, which builds and installs what it needs.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
TARGET = os.path.join(ROOT, "target", "release", "examples", "bench_target")
K6 = os.path.join(ROOT, ".venv-bench", "bin", "k6")
OHA = shutil.which("oha") or os.path.join(ROOT, ".bench-tools", "bin", "oha")
LOCUST = os.path.join(ROOT, ".venv-bench", "bin", "locust")
ARTILLERY = os.path.join(ROOT, ".bench-tools", "node_modules", ".bin", "artillery")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
BODY = '{"id":"bench","message":"Hello from the benchmark","timestamp":1700000000000,"run_id":"bench"}'


def run_tool(argv, parse, env=None, cwd=None):
    """Runs a tool under wait4 to read its own CPU time and peak RSS."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=None if env is None else {**os.environ, **env}, cwd=cwd)
    # Read stdout fully before reaping, so a large output cannot block the child.
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{os.path.basename(argv[0])} exited {code}: {err.decode(errors='replace').strip()[-800:]}")
    requests = parse(out.decode(errors="replace"), err.decode(errors="replace"))
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "requests": requests,
        "wall": wall,
        "cpu": cpu,
        "rss_mib": usage.ru_maxrss / 1024.0,
    }


def start_target():
    proc = subprocess.Popen([TARGET, "0", "1"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        sys.exit(f"bench_target did not start: {line!r}")
    return proc, f"http://{match.group(1)}/prod/"


def loadgen(url, vus, seconds, tmp, extra=()):
    def parse(out, _err):
        return json.loads(out)["run"]["requests_sent"]
    return run_tool([LOADGEN, url, "--vus", str(vus), "--duration", f"{seconds}s", "--json", "--quiet",
                     *extra], parse)


def k6(url, vus, seconds, tmp, extra=()):
    script = os.path.join(tmp, "k6.js")
    with open(script, "w") as f:
        f.write(
            "import http from 'k6/http';\n"
            "const body = JSON.stringify(" + BODY + ");\n"
            "const params = { headers: { 'Content-Type': 'application/json' } };\n"
            "export default function () { http.post(__ENV.URL, body, params); }\n"
        )
    export = os.path.join(tmp, "k6-summary.json")

    def parse(_out, _err):
        with open(export) as f:
            return int(json.load(f)["metrics"]["http_reqs"]["count"])
    return run_tool([K6, "run", "--quiet", "--no-usage-report", "--vus", str(vus), "--duration", f"{seconds}s",
                     "--summary-export", export, *extra, "-e", f"URL={url}", script], parse)


def oha(url, vus, seconds, tmp, requests=None):
    def parse(out, _err):
        return sum(json.loads(out)["statusCodeDistribution"].values())
    amount = ["-n", str(requests)] if requests else ["-z", f"{seconds}s"]
    return run_tool([OHA, "--no-tui", "--output-format", "json", "-c", str(vus), *amount, "-m", "POST",
                     "-T", "application/json", "-d", BODY, url], parse)


def wrk(url, vus, seconds, tmp):
    script = os.path.join(tmp, "wrk.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{BODY}'\n")

    def parse(out, _err):
        return int(re.search(r"(\d+) requests in", out).group(1))
    return run_tool([WRK, "-t2", f"-c{vus}", f"-d{seconds}s", "-s", script, url], parse)


def split_url(url):
    """`http://host:port/path` as (`http://host:port`, `/path`)."""
    scheme, _, authority, path = url.split("/", 3)
    return f"{scheme}//{authority}", "/" + path


def locust(url, vus, seconds, tmp):
    """Locust's fastest client (FastHttpUser, no wait), in 2 processes: one per core."""
    host, path = split_url(url)
    script = os.path.join(tmp, "locustfile.py")
    with open(script, "w") as f:
        f.write(
            "from locust import FastHttpUser, constant, task\n"
            f"BODY = '{BODY}'\n"
            "class Poster(FastHttpUser):\n"
            "    wait_time = constant(0)\n"
            "    @task\n"
            "    def post(self):\n"
            f"        self.client.post('{path}', data=BODY,\n"
            "                         headers={'Content-Type': 'application/json'})\n"
        )

    def parse(out, _err):
        # Each process prints its JSON; the master's, with the totals, is the last non-empty.
        decoder, at, docs = json.JSONDecoder(), 0, []
        while at < len(out):
            while at < len(out) and out[at].isspace():
                at += 1
            if at < len(out):
                doc, at = decoder.raw_decode(out, at)
                docs.append(doc)
        return sum(entry["num_requests"] for entry in [d for d in docs if d][-1])
    return run_tool([LOCUST, "-f", script, "--headless", "-u", str(vus), "-r", str(vus), "-t", f"{seconds}s",
                     "-H", host, "--processes", "2", "--json", "--skip-log"], parse)


def artillery(url, vus, seconds, tmp):
    """Artillery's HTTP engine: `vus` virtual users arriving at once, each looping on the POST
    until the time is up."""
    host, path = split_url(url)
    with open(os.path.join(tmp, "artillery.yml"), "w") as f:
        f.write(
            f"config:\n  target: '{host}'\n  phases:\n    - duration: 1\n      arrivalCount: {vus}\n"
            "  processor: './artillery.js'\n"
            "scenarios:\n  - flow:\n      - loop:\n          - post:\n"
            f"              url: '{path}'\n"
            "              headers:\n                Content-Type: application/json\n"
            f"              body: '{BODY}'\n"
            "        whileTrue: 'keepGoing'\n"
        )
    with open(os.path.join(tmp, "artillery.js"), "w") as f:
        f.write(f"const end = Date.now() + {seconds * 1000};\n"
                "module.exports = { keepGoing(context, next) { return next(Date.now() < end); } };\n")
    report = os.path.join(tmp, "artillery.json")

    def parse(_out, _err):
        with open(report) as f:
            return int(json.load(f)["aggregate"]["counters"]["http.requests"])
    return run_tool([ARTILLERY, "run", "--quiet", "--output", report, "artillery.yml"], parse,
                    env={"ARTILLERY_DISABLE_TELEMETRY": "true"}, cwd=tmp)


def row(name, result, seconds):
    rps = result["requests"] / seconds
    per_k = result["cpu"] / result["requests"] * 1000 if result["requests"] else float("nan")
    return f"| {name} | {result['requests']:,} | {rps:,.0f} | {per_k:.4f} | {result['rss_mib']:.1f} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--vus", type=int, default=10)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    for path in (LOADGEN, TARGET, K6, OHA, WRK, LOCUST, ARTILLERY):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `make bench-loadgen`, which builds and installs the tools")

    target, url = start_target()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{args.vus} VUs/connections, {args.duration} s each, POST to {url} "
                  f"(bench_target, 1 worker thread), {os.cpu_count()} cores\n")
            print("| tool | requests | requests/s | CPU s per 1k requests | peak RSS MiB |")
            print("| --- | ---: | ---: | ---: | ---: |")
            tools = (("loadgen", loadgen), ("wrk -t2", wrk), ("oha", oha), ("k6", k6),
                     ("Locust (2 processes)", locust), ("Artillery", artillery))
            for name, tool in tools:
                print(row(name, tool(url, args.vus, args.duration, tmp), args.duration), flush=True)
                time.sleep(1)
            if not args.skip_memory:
                print("\nPeak RSS by run length (10 connections, --iterations / -n):\n")
                print("| tool | 100k requests | 1M requests | growth |")
                print("| --- | ---: | ---: | ---: |")
                for name, runner in (
                    ("loadgen", lambda n: run_tool([LOADGEN, url, "--vus", str(args.vus), "--iterations", str(n),
                                                     "--json", "--quiet"], lambda o, e: json.loads(o)["run"]["requests_sent"])),
                    ("oha", lambda n: oha(url, args.vus, 0, tmp, requests=n)),
                ):
                    small, large = runner(100_000), runner(1_000_000)
                    growth = (large["rss_mib"] / small["rss_mib"] - 1) * 100
                    print(f"| {name} | {small['rss_mib']:.1f} MiB | {large['rss_mib']:.1f} MiB | {growth:+.0f}% |", flush=True)
    finally:
        target.kill()
        target.wait()


if __name__ == "__main__":
    main()
