#!/usr/bin/env python3
"""Side by side, in one run: a real Swift 2.38.3 all-in-one and a Ringsmith cluster with the
same topology (N nodes on 127.0.0.2.., one device each, R replicas; Swift with workers =
cores), both loaded by the same client, `ringsmith bench`.

For every object size and concurrency it prints, per operation: req/s, p50 and p99 latency
of each side, the ratio Ringsmith/Swift, the servers' CPU seconds per 1,000 requests and the
bytes they wrote to storage per request (from /proc/<pid>/io), and the client's CPU share,
which must stay well below saturation for the figures to be the servers'. After each case of
small objects it measures the disk's floor for the same number of replica writes in flight
(scripts/disk_floor.py) and says how close Ringsmith's PUT came to it.

    scripts/bench-cluster.sh                 # the full matrix, then PACO (release build)
    BENCH_QUICK=1 scripts/bench-cluster.sh   # one small case, as CI runs it
    bench_cluster.py ... --cases 4096:16:2000 [--paco]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import disk_floor  # noqa: E402
import swift_aio  # noqa: E402


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    # After the comm field: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14)
    return int(fields[2]), sum(int(x) for x in fields[11:15])


def usage_of_groups(pgids):
    """(CPU seconds, bytes written to storage) of every process in these process groups."""
    ticks, written = 0, 0
    hz = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            pgrp, t = proc_stat(entry)
            if pgrp not in pgids:
                continue
            ticks += t
            with open(f"/proc/{entry}/io") as f:
                for line in f:
                    if line.startswith("write_bytes:"):
                        written += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / hz, written


def bench(ringsmith, auth, size, objects, conc, container):
    out = subprocess.run(
        [ringsmith, "bench", "-A", auth, "--objects", str(objects), "--size", str(size),
         "-c", str(conc), "--listings", "20", "--container", container, "--json"],
        capture_output=True, text=True)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise SystemExit(f"ringsmith bench failed against {auth}:\n{out.stderr}")
    return json.loads(out.stdout)


def measured(ringsmith, auth, pgids, size, objects, conc, container):
    cpu0, w0 = usage_of_groups(pgids)
    report = bench(ringsmith, auth, size, objects, conc, container)
    cpu1, w1 = usage_of_groups(pgids)
    requests = sum(p["requests"] for p in report["phases"])
    report["server_cpu_per_1000"] = (cpu1 - cpu0) * 1000.0 / max(requests, 1)
    report["bytes_written_per_request"] = (w1 - w0) / max(requests, 1)
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--paco", action="store_true",
                    help="Ringsmith's single-process deployment (`cluster up --paco`: proxy and "
                         "object server in one process) against a one-node, one-replica Swift")
    ap.add_argument("--cases", help="SIZE:CONCURRENCY:OBJECTS,... instead of the built-in matrix")
    a = ap.parse_args()
    if a.paco:
        # `cluster up --paco` runs one node holding one replica; Swift gets the same.
        a.nodes, a.replicas = 1, 1
    ringsmith = os.path.join(a.bin_dir, "ringsmith")
    cores = os.cpu_count() or 1
    if a.cases:
        cases = [tuple(int(x) for x in c.split(":")) for c in a.cases.split(",")]
    elif a.quick:
        cases = [(4096, 16, 200)]
    else:
        # The last case's listings read a container of 10,000 objects.
        cases = [(4096, 16, 2000), (1 << 20, 16, 200), (1 << 20, 128, 256), (4096, 128, 10000)]
    work = tempfile.mkdtemp(prefix="ringsmith-bench-")
    aio = swift_aio.SwiftAio(a.venv, os.path.join(work, "swift"), a.nodes, a.replicas, cores)
    rs_dir = os.path.join(work, "ringsmith")
    try:
        swift_auth = aio.start()
        with open(os.path.join(aio.root, "pids")) as f:
            swift_pgids = {int(x) for x in f if x.strip()}
        up = subprocess.run(
            [ringsmith, "cluster", "up", "--dir", rs_dir, "--nodes", str(a.nodes),
             "--replicas", str(a.replicas), "--no-daemons", *(["--paco"] if a.paco else []),
             "--proxy-port", str(swift_aio.free_port("127.0.0.1")),
             "--base-port", str(swift_aio.SwiftAio._free_base(
                 [f"127.0.0.{n + 2}" for n in range(a.nodes)]))],
            capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"ringsmith cluster up failed:\n{up.stdout}{up.stderr}")
        with open(os.path.join(rs_dir, "run", "cluster.json")) as f:
            record = json.load(f)
        rs_auth = record["auth_url"]
        rs_pgids = {p["pid"] for p in record["procs"]}

        load = os.getloadavg()
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  cores {cores}  load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  nodes {a.nodes}  replicas "
              f"{a.replicas}  binaries {a.bin_dir}"
              f"{'  ringsmith: single process (PACO)' if a.paco else ''}")
        print(f"{'size':>8} {'conc':>4} {'op':<6} {'swift/s':>9} {'ours/s':>9} {'ratio':>7} "
              f"{'p50 ms s/o':>15} {'p99 ms s/o':>17} {'cpu/1k s/o':>13} {'wr B/req s/o':>17} "
              f"{'client cpu':>10}")
        for i, (size, conc, objects) in enumerate(cases):
            container = f"bench{i}"
            swift = measured(ringsmith, swift_auth, swift_pgids, size, objects, conc, container)
            ours = measured(ringsmith, rs_auth, rs_pgids, size, objects, conc, container)
            for ps, po in zip(swift["phases"], ours["phases"]):
                ratio = po["per_second"] / max(ps["per_second"], 1e-9)
                client = max(p["client_cpu_seconds"] / max(p["seconds"], 1e-9) / cores
                             for p in (ps, po))
                errors = "" if ps["errors"] + po["errors"] == 0 else \
                    f"  errors swift {ps['errors']} ours {po['errors']}"
                print(f"{size:>8} {conc:>4} {po['op'].upper():<6} {ps['per_second']:>9.1f} "
                      f"{po['per_second']:>9.1f} {ratio:>6.1f}x "
                      f"{ps['p50_ms']:>7.1f}/{po['p50_ms']:<7.1f} "
                      f"{ps['p99_ms']:>8.1f}/{po['p99_ms']:<8.1f} "
                      f"{swift['server_cpu_per_1000']:>6.1f}/{ours['server_cpu_per_1000']:<6.1f} "
                      f"{swift['bytes_written_per_request']:>8.0f}/"
                      f"{ours['bytes_written_per_request']:<8.0f} "
                      f"{100 * client:>9.0f}%{errors}")
            if size <= 64 * 1024:
                # The same writes by the filesystem alone, on the disk the cluster uses, at
                # the number of replica writes the client keeps in flight.
                writers = conc * a.replicas
                rate, p50, p99 = disk_floor.measure(rs_dir, writers, 4.0, size)
                put = next(p["per_second"] for p in ours["phases"] if p["op"] == "put")
                bound = rate / a.replicas
                print(f"{'':>8} {conc:>4} floor: {writers} durable {size}-byte writes at once "
                      f"by the filesystem alone: {rate:.0f}/s (p50 {p50:.1f} ms, p99 "
                      f"{p99:.1f} ms), at most {bound:.0f} PUT/s; Ringsmith's PUT is at "
                      f"{100 * put / max(bound, 1e-9):.0f}% of it")
    finally:
        subprocess.run([ringsmith, "cluster", "down", "--dir", rs_dir], capture_output=True)
        aio.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
