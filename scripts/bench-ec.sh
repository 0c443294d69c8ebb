#!/usr/bin/env bash
# Erasure-coding throughput, Ringsmith's codec (ringsmith-ec) vs pyeclib 1.8.0 over
# liberasurecode/ISA-L (the Swift 2.38.3 virtualenv's wheel), side by side in one run:
# encode and decode of one segment at a time, single thread, MB (10^6 bytes) of segment
# per second. Decode starts from the last k fragments, so m data fragments are rebuilt.
#
#   scripts/bench-ec.sh [SEGMENT_BYTES] [SECONDS_PER_MEASURE] [ROUNDS]
#
# Defaults: 1 MiB segments (Swift's ec_object_segment_size), 1 s per measure, best of 3
# rounds (ours and pyeclib alternate, so a busy neighbour hurts both alike); codes 4+2 and
# 10+4 of liberasurecode_rs_vand, isa_l_rs_vand and isa_l_rs_cauchy. "reuse" is our
# encode_into with buffers kept across segments (pyeclib has no such call). A second table
# shows ours with each kernel this CPU has (GFNI, AVX2, portable), reuse-encode / decode.
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENT=${1:-1048576}
SECONDS_EACH=${2:-1}
ROUNDS=${3:-3}
VENV=${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}

cargo build --release --quiet -p ringsmith-ec --example ec-bench
OURS_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/ec-bench

echo "load: $(uptime)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
"$VENV/bin/python" - "$OURS_BIN" "$SEGMENT" "$SECONDS_EACH" "$ROUNDS" <<'PY'
import json, subprocess, sys, time
from pyeclib.ec_iface import ECDriver

ours_bin, size, seconds, rounds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
data = bytes((i * 2654435761 >> 13) & 0xff for i in range(size))

def rate(op):
    op()
    start = time.perf_counter()
    runs = 0
    while time.perf_counter() - start < seconds:
        op()
        runs += 1
    return runs * size / (time.perf_counter() - start) / 1e6

print('%-24s %5s | %-27s | %-16s | %-27s' % (
    'ec_type', 'k+m', 'encode MB/s ours / py (x)', 'reuse (x)', 'decode MB/s ours / py (x)'))
for ec_type in ('liberasurecode_rs_vand', 'isa_l_rs_vand', 'isa_l_rs_cauchy'):
    for k, m in ((4, 2), (10, 4)):
        drv = ECDriver(k=k, m=m, ec_type=ec_type)
        frags = drv.encode(data)
        tail = frags[m:]
        assert drv.decode(tail) == data
        best = {'py_enc': 0, 'py_dec': 0, 'encode_mb_s': 0, 'encode_reuse_mb_s': 0, 'decode_mb_s': 0}
        for _ in range(rounds):
            best['py_enc'] = max(best['py_enc'], rate(lambda: drv.encode(data)))
            best['py_dec'] = max(best['py_dec'], rate(lambda: drv.decode(tail)))
            out = subprocess.run([ours_bin, ec_type, str(k), str(m), str(size), str(seconds)],
                                 check=True, capture_output=True, text=True).stdout
            for key, value in json.loads(out).items():
                if key in best:
                    best[key] = max(best[key], value)
        print('%-24s %2d+%-2d | %8.0f / %6.0f (%5.1fx) | %8.0f (%5.1fx) | %8.0f / %6.0f (%5.1fx)' % (
            ec_type, k, m, best['encode_mb_s'], best['py_enc'], best['encode_mb_s'] / best['py_enc'],
            best['encode_reuse_mb_s'], best['encode_reuse_mb_s'] / best['py_enc'],
            best['decode_mb_s'], best['py_dec'], best['decode_mb_s'] / best['py_dec']))

# Ours with each slower kernel this CPU has, for hosts without GFNI (one round each).
print()
print('ours by kernel (encode / decode MB/s), best kernel first')
for ec_type in ('liberasurecode_rs_vand', 'isa_l_rs_vand', 'isa_l_rs_cauchy'):
    for k, m in ((4, 2), (10, 4)):
        cells = []
        for kernel in ('gfni', 'avx2', 'portable'):
            run = subprocess.run([ours_bin, ec_type, str(k), str(m), str(size), str(seconds), kernel],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                continue  # this CPU lacks the kernel
            r = json.loads(run.stdout)
            cells.append('%s %6.0f / %6.0f' % (kernel, r['encode_reuse_mb_s'], r['decode_mb_s']))
        print('%-24s %2d+%-2d | %s' % (ec_type, k, m, ' | '.join(cells)))
PY
echo "load: $(uptime)"
