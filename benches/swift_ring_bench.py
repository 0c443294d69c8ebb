#!/usr/bin/env python3
"""Times Swift 2.38.3 on the ring files `cargo bench -p ringsmith --bench ring` writes to
target/ring-bench/, with the same workload, so the two can be compared.

    cargo bench -p ringsmith --bench ring        # writes the rings, times Ringsmith
    ~/.cache/ringsmith/swift-venv/bin/python benches/swift_ring_bench.py
"""
import itertools
import os
import sys
import time

from swift.common import utils
from swift.common.ring import Ring

utils.HASH_PATH_PREFIX = b''
utils.HASH_PATH_SUFFIX = b'endcap'
DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'target',
                   'ring-bench')


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2]


paths = [('AUTH_%08x' % (i * 7919), 'photos-%d' % (i % 97),
          '2024/05/%06d/IMG_%d.jpg' % (i, i)) for i in range(4096)]

for pp in (18, 20):
    for fv in (1, 2):
        f = os.path.join(DIR, 'ring%d.v%d.ring.gz' % (pp, fv))
        if not os.path.exists(f):
            sys.exit('missing %s: run cargo bench -p ringsmith --bench ring first' % f)
        mn, med = best(lambda: Ring(f), 5)
        print('swift load  2^%d v%d: median %.1f ms (min %.1f ms)' % (pp, fv, med * 1e3, mn * 1e3))
    ring = Ring(os.path.join(DIR, 'ring%d.v2.ring.gz' % pp))

    def lookups():
        for a, c, o in paths:
            ring.get_nodes(a, c, o)
    mn, med = best(lookups, 5)
    print('swift get_nodes 2^%d: %.0f calls/s (median)' % (pp, len(paths) / med))

    def handoffs():
        for i in range(256):
            list(itertools.islice(ring.get_more_nodes((i * 2654435761) % (2 ** 32) % (2 ** pp)), 3))
    mn, med = best(handoffs, 5)
    print('swift get_more_nodes first 3, 2^%d: %.0f calls/s (median)' % (pp, 256 / med))
