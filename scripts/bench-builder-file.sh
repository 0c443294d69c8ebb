#!/usr/bin/env bash
# Times .builder load and save: Swift 2.38.3 (RingBuilder.load / save) against Ringsmith
# on the same file, and prints both times and the ratio.
#
#   scripts/bench-builder-file.sh [PART_POWER] [REPLICAS] [DEVICES] [ROUNDS]
#
# Defaults: a 2^20-partition, 3-replica builder of 1000 devices, best of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
PP=${1:-20}
REPLICAS=${2:-3}
DEVICES=${3:-1000}
ROUNDS=${4:-3}
VENV=${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}

cargo build --release --quiet --example bench_builder_file
BIN=target/release/examples/bench_builder_file
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
B="$WORK/object.builder"
"$BIN" gen "$B" "$PP" "$REPLICAS" "$DEVICES"
echo "builder: 2^$PP partitions x $REPLICAS replicas, $DEVICES devices, $(stat -c %s "$B") bytes (written by Ringsmith)"

SWIFT=$("$VENV/bin/python" - "$B" "$ROUNDS" <<'PY'
import json, resource, sys, time
from swift.common.ring import RingBuilder
path, rounds = sys.argv[1], int(sys.argv[2])
best_load = best_save = float('inf')
for _ in range(rounds):
    t = time.perf_counter(); b = RingBuilder.load(path); best_load = min(best_load, time.perf_counter() - t)
    t = time.perf_counter(); b.save(path + '.swift-out'); best_save = min(best_save, time.perf_counter() - t)
b.validate()
print(json.dumps({'load_s': best_load, 'save_s': best_save,
                  'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
PY
)
OURS=$("$BIN" time "$B" "$ROUNDS")
"$VENV/bin/python" - "$SWIFT" "$OURS" <<'PY'
import json, sys
s, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-6s %12s %12s %14s" % ("", "Swift", "Ringsmith", "Swift/Ringsmith"))
for k, label in (("load_s", "load"), ("save_s", "save")):
    print("%-6s %11.3fs %11.3fs %13.1fx" % (label, s[k], o[k], s[k] / o[k]))
print("%-6s %9.0f MiB %9.0f MiB" % ("peak", s["peak_rss_mib"], o["peak_rss_mib"]))
PY
