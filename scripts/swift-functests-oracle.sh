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
  echo "# Swift 2.38.3 functional tests (test_account, test_container, test_object,"
  echo "# test_protocol, tests, test_slo, test_dlo) that real Swift 2.38.3 passes on a one-node all-in-one."
  echo "# Regenerate with scripts/swift-functests-oracle.sh."
  sed -n 's/^passed //p' "$tmp/swift.txt" | sort
} > tests/swift_functional/swift-passes.txt
echo "$(grep -vc '^#' tests/swift_functional/swift-passes.txt) tests pass on Swift" >&2
