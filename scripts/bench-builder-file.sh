#!/usr/bin/env bash
# Times .builder load and save: Swift 2.38.3 (RingBuilder.load / save) against Ringsmith
# on the same file, and prints both times and the ratio. Wall and CPU time are both shown:
# on a shared machine the CPU time is the fair comparison. Ringsmith's save includes the
# fsync of its atomic replace; Swift's does not fsync.
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
res = {k: float('inf') for k in ('load_s', 'load_cpu_s', 'save_s', 'save_cpu_s')}
def timed(key, fn):
    t, c = time.perf_counter(), time.thread_time()
    out = fn()
    res[key + '_s'] = min(res[key + '_s'], time.perf_counter() - t)
    res[key + '_cpu_s'] = min(res[key + '_cpu_s'], time.thread_time() - c)
    return out
for _ in range(rounds):
    b = timed('load', lambda: RingBuilder.load(path))
    timed('save', lambda: b.save(path + '.swift-out'))
b.validate()  # Swift accepts the Ringsmith-written builder
res['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(res))
PY
)
OURS=$("$BIN" time "$B" "$ROUNDS")
"$VENV/bin/python" - "$SWIFT" "$OURS" <<'PY'
import json, sys
s, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-10s %12s %12s %16s" % ("best of N", "Swift", "Ringsmith", "Swift/Ringsmith"))
for k, label in (("load_s", "load wall"), ("load_cpu_s", "load CPU"),
                 ("save_s", "save wall"), ("save_cpu_s", "save CPU")):
    print("%-10s %11.3fs %11.3fs %15.1fx" % (label, s[k], o[k], s[k] / o[k]))
print("%-10s %8.0f MiB %8.0f MiB" % ("peak RSS", s["peak_rss_mib"], o["peak_rss_mib"]))
PY
