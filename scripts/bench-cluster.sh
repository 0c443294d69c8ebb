#!/usr/bin/env bash
# Ringsmith's cluster against a real Swift 2.38.3 all-in-one, side by side in one run, with
# the same client (`ringsmith bench`); see scripts/bench_cluster.py for what it prints.
#   scripts/bench-cluster.sh                  release build, the full matrix, then the
#                                             single-process (PACO) deployment
#   BENCH_QUICK=1 scripts/bench-cluster.sh    the debug build and one small case (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(./scripts/swift-venv.sh)"
target="${CARGO_TARGET_DIR:-target}"
if [[ -n "${BENCH_QUICK:-}" ]]; then
  cargo build --quiet -p ringsmith-cli -p ringsmith-server
  exec python3 scripts/bench_cluster.py --bin-dir "$target/debug" --venv "$venv" --quick
fi
cargo build --quiet --release -p ringsmith-cli -p ringsmith-server
python3 scripts/bench_cluster.py --bin-dir "$target/release" --venv "$venv"
exec python3 scripts/bench_cluster.py --bin-dir "$target/release" --venv "$venv" --paco \
  --cases 4096:16:2000,4096:128:2000
