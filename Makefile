# The commands the README gives. `make test` installs what it needs itself (a project-local
# Python venv with moto), then runs fmt, clippy and every test on one shared build.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

VENV      := .venv
FUNCTIONS := upstream midstream downstream
DIST      ?= dist
# The Lambda binaries' profile (Cargo.toml: small and quick to start).
PROFILE   ?= lambda

.PHONY: test check fmt-check clippy unit venv lambdas sizes clean

## test: fmt check, clippy -D warnings and every test (unit, property, moto adapters)
test: venv fmt-check clippy unit

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit: venv
	MOTO_SERVER="$(abspath $(VENV))/bin/moto_server" cargo test --workspace --locked

## lambdas: dist/<fn>/bootstrap for each function (the layout the CDK app reads via LAMBDA_DIST_PATH)
lambdas:
	cargo build --profile $(PROFILE) --locked -p functions --bins
	for f in $(FUNCTIONS); do \
	  mkdir -p $(DIST)/$$f; \
	  cp target/$(PROFILE)/$$f $(DIST)/$$f/bootstrap; \
	done

## sizes: the size of each function's bootstrap, in bytes (the README's table)
sizes: lambdas
	@for f in $(FUNCTIONS); do printf '%-10s %9d bytes\n' $$f $$(stat -c %s $(DIST)/$$f/bootstrap); done

clean:
	rm -rf target $(DIST) $(VENV)
