#!/usr/bin/env python3
"""Run rebalance scenarios through Swift's RingBuilder and through Ringsmith, side by side.

Scenarios are swift-ring-builder-analyzer JSON files (fixtures/scenarios/). Both sides run
the analyzer's loop: after each round's commands, rebalance + pretend_min_part_hours_passed
until nothing moves or the balance changes by less than 1.

Usage:
  scripts/compare-rebalance.py [--ours PATH] [--json] SCENARIO.json...
  scripts/compare-rebalance.py --swift-json SCENARIO.json   # Swift's steps only, JSON lines

Run it with any Python 3; Swift's side runs in the reference virtualenv
(~/.cache/ringsmith/swift-venv, or $RINGSMITH_SWIFT_VENV). Ours is the example binary
`rebalance_scenario` (built with `cargo build --release --example rebalance_scenario` when
--ours is not given). The table prints per round: final balance, final dispersion,
partition-replicas moved (sum over the round's rebalances), rebalances, and the wall and
CPU time of the round's first rebalance with the ratio Swift/Ringsmith.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SWIFT_RUNNER = r'''
import json, sys, time
from swift.common.ring import builder
from swift.cli.ring_builder_analyzer import parse_scenario
with open(sys.argv[1]) as f:
    scenario = parse_scenario(f.read())
seed = scenario['random_seed']
rb = builder.RingBuilder(scenario['part_power'], scenario['replicas'], 1)
rb.set_overload(scenario['overload'])
command_map = {'add': rb.add_dev, 'remove': rb.remove_dev,
               'set_weight': rb.set_dev_weight, 'save': lambda *a: None}
fractional = scenario['replicas'] != int(scenario['replicas'])
def true_changed(old, new):
    # Swift's own count stops at the short last row (zip); count every slot.
    changed = 0
    for r, row in enumerate(new):
        old_row = old[r] if old is not None and r < len(old) else []
        changed += sum(1 for p, d in enumerate(row) if p >= len(old_row) or old_row[p] != d)
    return changed
def true_dispersion():
    # Swift's figure also stops at the short last row; recount over every partition.
    max_allowed = rb._build_max_replicas_by_tier()
    tiers = {d['id']: (lambda t: [t[:1], t[:2], t[:3], t])(
        (d['region'], d['zone'], d['ip'], d['id'])) for d in rb._iter_devs()}
    at_risk = 0
    for part in range(rb.parts):
        counts = {}
        for row in rb._replica2part2dev:
            if part < len(row):
                for t in tiers[row[part]]:
                    counts[t] = counts.get(t, 0) + 1
        risk = [0] * 5
        for t, n in counts.items():
            if n > max_allowed[t]:
                risk[len(t)] += n - max_allowed[t]
        at_risk += max(risk)
    return 100.0 * at_risk / (rb.parts * rb.replicas)
def step(r, n):
    old = [list(row) for row in rb._replica2part2dev] if (
        fractional and rb._replica2part2dev) else None
    t = time.perf_counter()
    c = time.process_time()
    moved, balance, removed = rb.rebalance(seed=seed)
    secs = time.perf_counter() - t
    cpu = time.process_time() - c
    dispersion = rb.dispersion
    if fractional:
        moved = true_changed(old, rb._replica2part2dev)
        dispersion = true_dispersion()
    rb.pretend_min_part_hours_passed()
    print(json.dumps({'round': r, 'rebalance': n, 'seconds': secs, 'cpu_seconds': cpu,
                      'moved': moved,
                      'balance': balance, 'dispersion': dispersion,
                      'removed': removed}), flush=True)
    return moved, balance, removed
for ri, commands in enumerate(scenario['rounds']):
    for command in commands:
        command = list(command)
        command_map[command.pop(0)](*command)
    n = 1
    _, old_balance, _ = step(ri + 1, n)
    while True:
        n += 1
        moved, new_balance, removed = step(ri + 1, n)
        if moved == 0 and removed == 0:
            break
        if abs(new_balance - old_balance) < 1 and not (
                old_balance == builder.MAX_BALANCE and
                new_balance == builder.MAX_BALANCE):
            break
        old_balance = new_balance
'''


def swift_python():
    venv = os.environ.get('RINGSMITH_SWIFT_VENV') or os.path.expanduser(
        '~/.cache/ringsmith/swift-venv')
    py = os.path.join(venv, 'bin', 'python')
    if not os.path.exists(py):
        sys.exit('Swift virtualenv not found at %s (run scripts/test.sh once)' % venv)
    return py


def run_lines(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit('%s failed:\n%s' % (' '.join(cmd), proc.stderr))
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def run_swift(path):
    return run_lines([swift_python(), '-c', SWIFT_RUNNER, path])


def ours_binary(path):
    if path:
        return path
    subprocess.run(['cargo', 'build', '--quiet', '--release', '-p', 'ringsmith',
                    '--example', 'rebalance_scenario'], cwd=ROOT, check=True)
    return os.path.join(ROOT, 'target', 'release', 'examples', 'rebalance_scenario')


def per_round(steps):
    rounds = {}
    for s in steps:
        r = rounds.setdefault(s['round'], {'moved': 0, 'seconds': 0.0, 'rebalances': 0})
        r['moved'] += s['moved']
        r['seconds'] += s['seconds']
        r['rebalances'] += 1
        r['balance'] = s['balance']
        r['dispersion'] = s['dispersion'] or 0.0
        r['first_seconds'] = r.get('first_seconds', s['seconds'])
        r['first_cpu'] = r.get('first_cpu', s.get('cpu_seconds', s['seconds']))
    return rounds


def main(argv):
    args = argv[1:]
    if args and args[0] == '--swift-json':
        for line in run_swift(args[1]):
            print(json.dumps(line))
        return 0
    ours = None
    as_json = False
    files = []
    while args:
        a = args.pop(0)
        if a == '--ours':
            ours = args.pop(0)
        elif a == '--json':
            as_json = True
        else:
            files.append(a)
    if not files:
        print(__doc__)
        return 2
    binary = ours_binary(ours)
    results = []
    for path in files:
        t0 = time.perf_counter()
        swift = per_round(run_swift(path))
        ours_rounds = per_round(run_lines([binary, path]))
        results.append((path, swift, ours_rounds))
        if as_json:
            continue
        print('\n%s  (wall %.1fs)' % (os.path.basename(path), time.perf_counter() - t0))
        print('%5s | %10s %10s | %9s %9s | %8s %8s | %4s %4s | %9s %9s %7s | %9s %9s %7s' % (
            'round', 'bal swift', 'bal ours', 'disp sw', 'disp ours', 'moved sw',
            'moved us', 'n sw', 'n us', 'wall sw', 'wall us', 'ratio', 'cpu sw',
            'cpu us', 'ratio'))
        for r in sorted(swift):
            s, o = swift[r], ours_rounds.get(r, {})
            ratio = s['first_seconds'] / max(o.get('first_seconds', 0), 1e-9)
            cratio = s['first_cpu'] / max(o.get('first_cpu', 0), 1e-9)
            print('%5d | %10.4f %10.4f | %9.4f %9.4f | %8d %8d | %4d %4d | %8.3fs %8.4fs %6.0fx'
                  ' | %8.3fs %8.4fs %6.0fx' % (
                      r, s['balance'], o.get('balance', float('nan')), s['dispersion'],
                      o.get('dispersion', float('nan')), s['moved'], o.get('moved', -1),
                      s['rebalances'], o.get('rebalances', 0), s['first_seconds'],
                      o.get('first_seconds', float('nan')), ratio, s['first_cpu'],
                      o.get('first_cpu', float('nan')), cratio))
    if as_json:
        print(json.dumps([{'scenario': p, 'swift': s, 'ours': o} for p, s, o in results],
                         indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
