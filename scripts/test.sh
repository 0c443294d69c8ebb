#!/usr/bin/env bash
# Runs every test of the workspace, interop tests against real Swift 2.38.3 included.
# Installs what it needs on a fresh machine: the Swift virtualenv (cached), and the Debian
# packages the end-to-end tests drive (tmux, iproute2, memcached, systemd, dpkg,
# libfaketime).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tmux >/dev/null || need_apt+=(tmux)
# `cluster up --netns` (the multi-host tests) drives iproute2.
command -v ip >/dev/null || need_apt+=(iproute2)
# The cache filter's tests and `cluster up --memcached` start memcached.
command -v memcached >/dev/null || need_apt+=(memcached)
# The systemd unit test runs `systemd-analyze verify`; the package test needs dpkg-deb.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
# The clock faults of the fault test (`cluster fault skew`) run servers under libfaketime.
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || need_apt+=(libfaketime)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

# Guardrails first: formatting, lints (warnings are errors), docs, unused dependencies.
echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== unused dependencies (cargo-machete)" >&2
command -v cargo-machete >/dev/null || cargo install --quiet --locked cargo-machete@0.9.2
cargo machete

# Interop tests never skip: ringsmith-testkit panics when the virtualenv is unusable.
RINGSMITH_SWIFT_VENV="$(./scripts/swift-venv.sh)"
export RINGSMITH_SWIFT_VENV
# A real Keystone for the proxy's keystone tests (and keystonemiddleware in the Swift venv).
RINGSMITH_KEYSTONE_VENV="$(./scripts/keystone-venv.sh)"
export RINGSMITH_KEYSTONE_VENV

cargo build --workspace --bins

# A short side-by-side benchmark against real Swift: it prints the ratios so that a
# regression shows in CI's log (run before the tests, so that their summary closes it).
# Figures on a shared CI machine are not asserted.
echo "== quick benchmark: Ringsmith vs Swift 2.38.3 (debug build, one small case)" >&2
BENCH_QUICK=1 ./scripts/bench-cluster.sh

# The fuzz targets (nightly, their own target directory) build in the background at the
# lowest priority while the tests run: most tests wait on servers and clocks, and the
# build only takes the CPU they leave idle. A debug build: a third of an optimised one.
fuzz_build_log="$(mktemp)"
FUZZ_PROFILE=dev FUZZ_BUILD_ONLY=1 nice -n 19 ./scripts/fuzz.sh >"$fuzz_build_log" 2>&1 &
fuzz_build=$!
trap 'kill "$fuzz_build" 2>/dev/null || true' EXIT

cargo test --workspace --all-targets "$@"

if ! wait "$fuzz_build"; then
  cat "$fuzz_build_log" >&2
  echo "building the fuzz targets failed" >&2
  exit 1
fi
trap - EXIT
# Every fuzz target from its committed corpus for a short while (a crash fails CI).
FUZZ_PROFILE=dev ./scripts/fuzz.sh 10
