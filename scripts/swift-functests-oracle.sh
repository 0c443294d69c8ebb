#!/usr/bin/env bash
# Regenerates tests/swift_functional/swift-passes.txt: the Swift 2.38.3 functional tests
# that real Swift 2.38.3 passes, run by scripts/swift-functests.sh against a fresh
# all-in-one (account, container, object servers and proxy from the venv, on 127.0.0.x)
# per module, with the same users and test.conf as the Ringsmith run.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./scripts/swift-functests.sh swift "$tmp/swift.txt" "$@"
{
  echo "# The Swift 2.38.3 functional tests (every module tests/swift_functional/run.py runs;"
  echo "# MODULE@ec against an erasure-coded default policy) that real Swift 2.38.3 passes on a"
  echo "# one-node all-in-one; devices: $(cat "$tmp/swift.txt.devices")."
  echo "# Regenerate with scripts/swift-functests-oracle.sh."
  sed -n 's/^passed //p' "$tmp/swift.txt" | sort
} > tests/swift_functional/swift-passes.txt
echo "$(grep -vc '^#' tests/swift_functional/swift-passes.txt) tests pass on Swift" >&2
