#!/usr/bin/env bash
# Runs every test of the workspace, interop tests against real Swift 2.38.3 included.
# Installs what it needs on a fresh machine: the Swift virtualenv (cached), and the Debian
# packages the end-to-end tests drive (tmux).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tmux >/dev/null || need_apt+=(tmux)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

RINGSMITH_SWIFT_VENV="$(./scripts/swift-venv.sh)"
export RINGSMITH_SWIFT_VENV
# Interop tests must run, never skip: they fail loudly if the virtualenv is unusable.
export RINGSMITH_REQUIRE_INTEROP=1

cargo build --workspace --bins
cargo test --workspace --all-targets "$@"
