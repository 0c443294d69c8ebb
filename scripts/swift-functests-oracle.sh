#!/usr/bin/env bash
# Regenerates tests/swift_functional/swift-passes.txt: the Swift 2.38.3 functional tests
# that real Swift 2.38.3 passes, run by scripts/swift-functests.sh against a fresh
# all-in-one (account, container, object servers and proxy from the venv, on 127.0.0.x)
# per module, with the same users and test.conf as the Ringsmith run.
#
#   scripts/swift-functests-oracle.sh              every module (about 20 minutes)
#   scripts/swift-functests-oracle.sh MODULE...    only these (e.g. tests@ec): their lines
#                                                  are replaced, every other module's kept
# Each module runs against a cluster of its own, so a partial run writes the same lines a
# full one would.
set -euo pipefail
cd "$(dirname "$0")/.."
list=tests/swift_functional/swift-passes.txt
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./scripts/swift-functests.sh swift "$tmp/swift.txt" "$@"
devices="$(cat "$tmp/swift.txt.devices")"
sed -n 's/^passed //p' "$tmp/swift.txt" > "$tmp/passes"
if [[ $# -gt 0 ]]; then
  # The kept lines were made on the same kind of devices, or the header would lie.
  if ! grep -q "^# one-node all-in-one; devices: $devices\.$" "$list"; then
    echo "$list was made on other devices than this run's ($devices): regenerate it all" >&2
    exit 1
  fi
  printf '%s\n' "$@" > "$tmp/modules"
  grep -v '^#' "$list" | awk -F'::' 'NR == FNR { run[$0] = 1; next } !($1 in run)' \
    "$tmp/modules" - >> "$tmp/passes"
fi
{
  echo "# The Swift 2.38.3 functional tests (every module tests/swift_functional/run.py runs;"
  echo "# MODULE@ec against an erasure-coded default policy) that real Swift 2.38.3 passes on a"
  echo "# one-node all-in-one; devices: $devices."
  echo "# Regenerate with scripts/swift-functests-oracle.sh."
  LC_ALL=C sort "$tmp/passes"
} > "$list"
echo "$(grep -vc '^#' "$list") tests pass on Swift" >&2
