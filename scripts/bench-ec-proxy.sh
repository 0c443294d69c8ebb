#!/usr/bin/env bash
# EC PUT/GET through Ringsmith's proxy and real Swift 2.38.3's proxy over the same
# Ringsmith EC cluster, side by side in one run; see scripts/bench_ec_proxy.py.
#   scripts/bench-ec-proxy.sh                 release build
#   BENCH_QUICK=1 scripts/bench-ec-proxy.sh   the debug build, one small case
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(./scripts/swift-venv.sh)"
target="${CARGO_TARGET_DIR:-target}"
if [[ -n "${BENCH_QUICK:-}" ]]; then
  cargo build --quiet -p ringsmith-cli -p ringsmith-server
  exec python3 scripts/bench_ec_proxy.py --bin-dir "$target/debug" --venv "$venv" --quick
fi
cargo build --quiet --release -p ringsmith-cli -p ringsmith-server
exec python3 scripts/bench_ec_proxy.py --bin-dir "$target/release" --venv "$venv" "$@"
