"""Golden vectors from the reference virtualenv's pyeclib, for ec/tests/pyeclib_golden.rs.

Usage: python pyeclib_golden.py <dir>. Reads <dir>/cases.json, written by the Rust test:
a list of cases {"id", "ec_type", "k", "m", "data", "ours", "decode_subsets",
"reconstruct", "corrupt"}, with file names relative to <dir>. For each case it writes
pyeclib's fragments (py-<id>-<i>.bin) and reconstructions (pyrec-<id>-<idx>.bin), decodes
our fragments from the given subsets, and prints one JSON document with the results.
It only reports; the Rust test judges.
"""
import json
import os
import sys

from pyeclib.ec_iface import ECDriver


def read(d, name):
    with open(os.path.join(d, name), 'rb') as f:
        return f.read()


def write(d, name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def main():
    d = sys.argv[1]
    with open(os.path.join(d, 'cases.json')) as f:
        cases = json.load(f)
    drivers = {}
    results = {}
    for case in cases:
        key = (case['ec_type'], case['k'], case['m'])
        if key not in drivers:
            drivers[key] = ECDriver(k=case['k'], m=case['m'], ec_type=case['ec_type'])
        drv = drivers[key]
        data = read(d, case['data'])
        frags = drv.encode(data)
        for i, frag in enumerate(frags):
            write(d, 'py-%s-%d.bin' % (case['id'], i), frag)
        ours = [read(d, name) for name in case['ours']]
        decoded = []
        for subset in case['decode_subsets']:
            try:
                out = drv.decode([ours[i] for i in subset])
                decoded.append('ok' if out == data else 'wrong bytes')
            except Exception as e:  # reported, judged by the Rust side
                decoded.append('error: %s: %s' % (type(e).__name__, e))
        for idx, subset in case['reconstruct']:
            try:
                rec = drv.reconstruct([frags[i] for i in subset], [idx])[0]
                write(d, 'pyrec-%s-%d.bin' % (case['id'], idx), rec)
            except Exception as e:
                write(d, 'pyrec-%s-%d.err' % (case['id'], idx),
                      ('%s: %s' % (type(e).__name__, e)).encode())
        corrupt = []
        for names in case['corrupt']:
            try:
                out = drv.decode([read(d, n) for n in names])
                corrupt.append('ok' if out == data else 'wrong bytes')
            except Exception as e:
                corrupt.append('error: %s' % type(e).__name__)
        # The legacy metadata CRC liberasurecode writes on request (and wrote before
        # 1.5.0); readers accept both.
        os.environ['LIBERASURECODE_WRITE_LEGACY_CRC'] = '1'
        for i, frag in enumerate(drv.encode(data)):
            write(d, 'legacy-%s-%d.bin' % (case['id'], i), frag)
        del os.environ['LIBERASURECODE_WRITE_LEGACY_CRC']
        infos = [drv.get_segment_info(n, s) for n, s in case['segment_info']]
        meta = [drv.get_metadata(frags[i], formatted=True) for i in (0, len(frags) - 1)]
        results[case['id']] = {
            'metadata': meta,
            'decode_ours': decoded,
            'corrupt': corrupt,
            'segment_info': infos,
        }
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
