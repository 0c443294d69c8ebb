#!/usr/bin/env python3
"""Erasure-coded PUT and GET through Ringsmith's proxy and through real Swift 2.38.3's
proxy, side by side in one run, over the SAME storage: a `ringsmith cluster up --nodes 6
--ec-policy 4+2 --ec-default` cluster (Ringsmith's object servers), with Swift's proxy
started on the same rings and swift.conf. Both are loaded by the same client
(`ringsmith bench`), alternating, so what differs is the proxy: encoding, decoding and
the multiphase backend conversation.

Prints per case and operation: requests/s and MB/s of each proxy, the ratio
Ringsmith/Swift, and each proxy's CPU seconds per request (from /proc).

    scripts/bench-ec-proxy.sh            # release build
    BENCH_QUICK=1 scripts/bench-ec-proxy.sh
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swift_aio  # noqa: E402
from swift_aio import wait_listening  # noqa: E402

MIDDLEWARES = ["catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "listing_formats",
               "bulk", "tempurl", "tempauth", "formpost", "staticweb", "copy", "slo", "dlo",
               "versioned_writes", "symlink"]

# Swift's servers read policies from /etc/swift/swift.conf whatever swift_dir says: this
# wrapper points them at the cluster's own swift.conf before the script runs.
WRAPPER = ("import sys, runpy\nimport swift.common.utils as u\n"
           "u.SWIFT_CONF_FILE = sys.argv[1]\n"
           "from swift.common import storage_policy\n"
           "storage_policy.reload_storage_policies()\n"
           "sys.argv = sys.argv[2:]\n"
           "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def cpu_seconds(pid, group):
    """CPU seconds of process `pid` (all its threads), or of its whole process group."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            if int(entry) == pid or (group and int(fields[2]) == pid):
                total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return total / hz


def start_swift_proxy(venv, etc, port, workers, log):
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    conf = os.path.join(etc, "swift-proxy-server.conf")
    pipeline = " ".join(MIDDLEWARES) + " proxy-logging proxy-server"
    with open(conf, "w") as f:
        f.write(f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = {workers}\n"
                f"swift_dir = {etc}\nlog_level = WARNING\n\n[pipeline:main]\n"
                f"pipeline = {pipeline}\n\n[app:proxy-server]\nuse = egg:swift#proxy\n"
                "account_autocreate = true\n\n"
                f"[filter:tempauth]\nuse = egg:swift#tempauth\nfernet_key_k1 = {key}\n"
                "active_fernet_key_id = k1\nuser_test_tester = testing .admin\n\n"
                + "".join(f"[filter:{m}]\nuse = egg:swift#{m.replace('-', '_')}\n"
                          for m in MIDDLEWARES if m != "tempauth"))
    logf = open(log, "w")
    p = subprocess.Popen([os.path.join(venv, "bin", "python3"), "-c", WRAPPER,
                          os.path.join(etc, "swift.conf"),
                          os.path.join(venv, "bin", "swift-proxy-server"), conf],
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                         start_new_session=True)
    wait_listening(f"127.0.0.1:{port}", "Swift proxy")
    return p


def bench(ringsmith, auth, size, objects, conc, container, pid, group):
    cpu0 = cpu_seconds(pid, group)
    out = subprocess.run(
        [ringsmith, "bench", "-A", auth, "--objects", str(objects), "--size", str(size),
         "-c", str(conc), "--phases", "put,get,delete", "--container", container, "--json"],
        capture_output=True, text=True)
    cpu = cpu_seconds(pid, group) - cpu0
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise SystemExit(f"ringsmith bench failed against {auth}:\n{out.stderr}")
    report = json.loads(out.stdout)
    report["proxy_cpu"] = cpu
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    ringsmith = os.path.join(a.bin_dir, "ringsmith")
    cores = os.cpu_count() or 1
    cases = [(1 << 20, 4, 16)] if a.quick else [
        (64 << 10, 16, 300), (1 << 20, 4, 60), (4 << 20, 4, 20)]
    work = tempfile.mkdtemp(prefix="ringsmith-bench-ec-")
    rs_dir = os.path.join(work, "cluster")
    swift = None
    try:
        up = subprocess.run(
            [ringsmith, "cluster", "up", "--dir", rs_dir, "--nodes", "6", "--ec-policy", "4+2",
             "--ec-default", "--no-daemons", "--server-bin",
             os.path.join(a.bin_dir, "ringsmith-server"),
             "--proxy-port", str(swift_aio.free_port("127.0.0.1")),
             "--base-port", str(swift_aio.SwiftAio._free_base(
                 [f"127.0.0.{n + 2}" for n in range(6)]))],
            capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"ringsmith cluster up failed:\n{up.stdout}{up.stderr}")
        with open(os.path.join(rs_dir, "run", "cluster.json")) as f:
            record = json.load(f)
        ours_auth = record["auth_url"]
        ours_pid = next(p["pid"] for p in record["procs"] if p["kind"] == "proxy")
        port = swift_aio.free_port("127.0.0.1")
        # workers = 0 (one process): forked workers do not start under the policy wrapper;
        # the CPU per request column is the like-for-like figure.
        swift = start_swift_proxy(a.venv, os.path.join(rs_dir, "etc"), port, 0,
                                  os.path.join(work, "swift-proxy.log"))
        swift_auth = f"http://127.0.0.1:{port}/auth/v1.0"
        load = os.getloadavg()
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  cores {cores}  load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  EC 4+2 liberasurecode_rs_vand, "
              f"1 MiB segments, 6 Ringsmith object servers  binaries {a.bin_dir}  "
              f"Swift proxy workers 0 (one process), ours all cores; best of {a.rounds} alternating rounds")
        print(f"{'size':>8} {'conc':>4} {'op':<6} {'swift/s':>9} {'ours/s':>9} {'swift MB/s':>10} "
              f"{'ours MB/s':>10} {'ratio':>7} {'proxy cpu ms/req s/o (whole run)':>34}")
        for i, (size, conc, objects) in enumerate(cases):
            best = {}
            for r in range(a.rounds):
                # Swift's proxy is a process group (master and workers); ours one process.
                for who, auth, pid, group in (("swift", swift_auth, swift.pid, True),
                                              ("ours", ours_auth, ours_pid, False)):
                    rep = bench(ringsmith, auth, size, objects, conc, f"ec{i}{who}{r}", pid,
                                group)
                    reqs = sum(p["requests"] for p in rep["phases"])
                    for p in rep["phases"]:
                        if p["errors"]:
                            raise SystemExit(f"{who}: {p['errors']} errors in {p['op']}")
                        key = (who, p["op"])
                        if key not in best or p["per_second"] > best[key][0]:
                            best[key] = (p["per_second"],
                                         1000.0 * rep["proxy_cpu"] / max(reqs, 1))
            for op in ("put", "get", "delete"):
                s, o = best[("swift", op)], best[("ours", op)]
                mb = (lambda x: x * size / 1e6) if op != "delete" else (lambda x: 0.0)
                print(f"{size:>8} {conc:>4} {op.upper():<6} {s[0]:>9.1f} {o[0]:>9.1f} "
                      f"{mb(s[0]):>10.1f} {mb(o[0]):>10.1f} {o[0] / max(s[0], 1e-9):>6.1f}x "
                      f"{s[1]:>7.1f}/{o[1]:<7.1f}")
    finally:
        if swift is not None:
            try:
                os.killpg(swift.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            swift.wait()
        subprocess.run([ringsmith, "cluster", "down", "--dir", rs_dir], capture_output=True)
        if os.environ.get("BENCH_KEEP"):
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
