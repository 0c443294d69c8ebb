#!/usr/bin/env python3
"""A long-lived Swift RingBuilder driven by JSON lines on stdin (one answer line per command).

Run it with the Swift virtualenv's Python. `tests/rebalance_scenarios.rs` starts it once and
feeds it hundreds of generated scenarios, so Python and Swift are imported once instead of
once per step.

Commands (one JSON object per line, field "cmd"):
  new         part_power, replicas, min_part_hours     -> {}
  add         region, zone, ip, port, device, weight    -> {"id": N}
  remove      id                                        -> {}
  set_weight  id, weight                                -> {}
  set_overload overload                                 -> {}
  set_replicas replicas                                 -> {}
  pretend                                               -> {}   (pretend_min_part_hours_passed)
  save        path                                      -> {}   (a .builder file)
  rebalance   seed  -> {"moved", "balance", "dispersion", "removed", "parts": {id: count},
                        "beyond_one_move": partitions Swift moved more of than Ringsmith's
                        one-move rule allows}
                       or {"error": message}

"moved" counts every slot of the new table whose device differs from before (new slots
included, dropped slots not); "dispersion" is recounted over every partition, including the
short last row of fractional replicas, which Swift's own figures leave out. Both are the
definitions Ringsmith's rebalance outcome uses, so the two sides compare like for like.
"""
import json
import sys

from swift.common.ring.builder import RingBuilder


def changed_slots(old, new):
    changed = 0
    for r, row in enumerate(new):
        old_row = old[r] if old is not None and r < len(old) else []
        for p, d in enumerate(row):
            if p >= len(old_row) or old_row[p] != d:
                changed += 1
    return changed


def partitions_beyond_one_move(old, new, removed):
    """Partitions that moved an existing replica besides another change to the partition in
    the same rebalance: a second existing replica, or a new slot (replica-count increase),
    or a slot of a removed device. Swift allows that; Ringsmith moves nothing else of a
    partition in those cases (its tests assert it)."""
    if old is None:
        return 0
    count = 0
    for p in range(len(new[0]) if new else 0):
        moved = 0
        other = False
        for r, row in enumerate(new):
            if p >= len(row):
                continue
            if r >= len(old) or p >= len(old[r]):
                other = True
            elif old[r][p] in removed:
                other = True
            elif old[r][p] != row[p]:
                moved += 1
        if moved > 1 or (moved == 1 and other):
            count += 1
    return count


def dispersion_everywhere(rb):
    max_allowed = rb._build_max_replicas_by_tier()
    paths = {}
    for d in rb._iter_devs():
        t = (d['region'], d['zone'], d['ip'], d['id'])
        paths[d['id']] = (t[:1], t[:2], t[:3], t)
    at_risk = 0
    rows = rb._replica2part2dev
    for part in range(rb.parts):
        counts = {}
        for row in rows:
            if part < len(row):
                for t in paths[row[part]]:
                    counts[t] = counts.get(t, 0) + 1
        risk = [0] * 5
        for t, n in counts.items():
            if n > max_allowed[t]:
                risk[len(t)] += n - max_allowed[t]
        at_risk += max(risk)
    return 100.0 * at_risk / (rb.parts * rb.replicas)


def main():
    rb = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        cmd = msg['cmd']
        out = {}
        try:
            if cmd == 'new':
                rb = RingBuilder(msg['part_power'], msg['replicas'], msg['min_part_hours'])
            elif cmd == 'add':
                dev = {k: msg[k] for k in ('id', 'region', 'zone', 'ip', 'port', 'device', 'weight') if k in msg}
                out['id'] = rb.add_dev(dev)
            elif cmd == 'remove':
                rb.remove_dev(msg['id'])
            elif cmd == 'set_weight':
                rb.set_dev_weight(msg['id'], msg['weight'])
            elif cmd == 'set_overload':
                rb.set_overload(msg['overload'])
            elif cmd == 'set_replicas':
                rb.set_replicas(msg['replicas'])
            elif cmd == 'save':
                rb.save(msg['path'])
            elif cmd == 'pretend':
                rb.pretend_min_part_hours_passed()
            elif cmd == 'rebalance':
                old = [list(row) for row in rb._replica2part2dev] \
                    if rb._replica2part2dev else None
                removing = set(d['id'] for d in rb._remove_devs)
                _, balance, removed = rb.rebalance(seed=msg['seed'])
                out = {'moved': changed_slots(old, rb._replica2part2dev),
                       'balance': balance, 'dispersion': dispersion_everywhere(rb),
                       'removed': removed,
                       'beyond_one_move': partitions_beyond_one_move(
                           old, rb._replica2part2dev, removing),
                       'parts': {str(d['id']): d['parts'] for d in rb._iter_devs()}}
            else:
                out = {'error': 'unknown command %r' % cmd}
        except Exception as e:  # an answer per line keeps the two sides in step
            out = {'error': '%s: %s' % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
