#!/usr/bin/env bash
# Times `swift-ring-builder` (Swift 2.38.3) and `ringsmith ring` command by command on copies
# of the same builder (built and rebalanced by Swift), wall clock per invocation including
# process start-up — what an operator or a CI job waits for — and prints the ratio.
#
#   scripts/bench-ring-cli.sh [PART_POWER] [DEVICES] [ROUNDS]
#
# Defaults: a 2^16-partition, 3-replica builder of 60 devices in 5 zones, best of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
PP=${1:-16}
DEVICES=${2:-60}
ROUNDS=${3:-3}
VENV=${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}

cargo build --release --quiet -p ringsmith-cli
OURS_BIN=$PWD/target/release/ringsmith
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$VENV/bin/python" - "$WORK" "$PP" "$DEVICES" "$ROUNDS" "$VENV/bin/swift-ring-builder" "$OURS_BIN" <<'PY'
import os, shutil, subprocess, sys, time
work, pp, ndev, rounds, swift, ours = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
base = os.path.join(work, 'base')
os.makedirs(base)
def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode
run([swift, 'object.builder', 'create', str(pp), '3', '1'], base)
adds = []
for i in range(ndev):
    zone = i % 5 + 1
    adds += ['r1z%d-10.0.%d.%d:6200/d%d' % (zone, zone, i // 5 + 1, i), '100']
run([swift, 'object.builder', 'add'] + adds, base)
t = time.perf_counter(); run([swift, 'object.builder', 'rebalance', '--seed', '1'], base)
print('builder: 2^%d partitions x 3 replicas, %d devices in 5 zones (first Swift rebalance %.1f s)' % (pp, ndev, time.perf_counter() - t))
run([swift, 'object.builder', 'pretend_min_part_hours_passed'], base)
# One device gets half weight so the timed rebalance has work to do.
run([swift, 'object.builder', 'set_weight', 'd0', '50'], base)

commands = [
    ('default view', ['object.builder']),
    ('search d1', ['object.builder', 'search', 'd1']),
    ('list_parts d1', ['object.builder', 'list_parts', 'd1']),
    ('dispersion -v', ['object.builder', 'dispersion', '-v']),
    ('validate', ['object.builder', 'validate']),
    ('write_ring v2', ['object.builder', 'write_ring', '--format-version', '2']),
    ('set_weight d3 80', ['object.builder', 'set_weight', 'd3', '80']),
    ('rebalance --seed 2', ['object.builder', 'rebalance', '--seed', '2']),
]
print('%-20s %10s %10s %8s' % ('command', 'swift s', 'ours s', 'ratio'))
for name, args in commands:
    best = {}
    for who, prefix in (('swift', [swift]), ('ours', [ours, 'ring'])):
        times = []
        for r in range(rounds):
            d = os.path.join(work, '%s-%d' % (who, r))
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(base, d)
            t = time.perf_counter()
            code = run(prefix + args, d)
            times.append(time.perf_counter() - t)
            assert code in (0, 1), (who, args, code)
        best[who] = min(times)
    print('%-20s %10.3f %10.3f %7.1fx' % (name, best['swift'], best['ours'], best['swift'] / best['ours']))
PY
