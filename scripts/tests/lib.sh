# Sourced by the smoke tests (scripts/tests/*_smoke.sh), with SMOKE set to the test's name: a
# scratch folder `$work` (removed at exit) holding the debug functions in `$work/dist`, a free
# loopback port, and `fail` (one line naming the test, exit 1).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in upstream midstream downstream; do
  mkdir -p "$work/dist/$f"
  cp "target/debug/$f" "$work/dist/$f/bootstrap"
done
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "$SMOKE: $*" >&2; exit 1; }
