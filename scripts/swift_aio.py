#!/usr/bin/env python3
"""A real Swift 2.38.3 all-in-one on loopback, from the Swift virtualenv: the oracle that
Ringsmith's benchmarks and functional tests run against.

    swift_aio.py start --dir D [--nodes 3] [--replicas 3] [--workers 2] [--pipeline P]
    swift_aio.py stop --dir D

`start` builds rings with swift-ring-builder (node N on 127.0.0.N+2, one device each, its
own zone), writes per-node configs, starts the servers and the proxy, waits until each
answers, records every pid in D/pids and prints the auth URL. `stop` kills exactly those
process groups. Only loopback addresses are used.
"""

import argparse
import base64
import getpass
import os
import signal
import socket
import subprocess
import sys
import time

USERS = (
    "user_admin_admin = admin .admin .reseller_admin\n"
    "user_test_tester = testing .admin\n"
    "user_test_tester2 = testing2 .admin\n"
    "user_test_tester3 = testing3\n"
    "user_test2_tester2 = testing2 .admin\n"
)
DEFAULT_PIPELINE = "catch_errors gatekeeper healthcheck proxy-logging listing_formats " \
    "tempauth copy slo dlo proxy-logging proxy-server"


def free_port(ip):
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait_listening(addr, what, timeout=60):
    host, port = addr.rsplit(":", 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} is not listening on {addr} after {timeout}s")


class SwiftAio:
    def __init__(self, venv, root, nodes=3, replicas=3, workers=2, pipeline=DEFAULT_PIPELINE,
                 part_power=10):
        self.venv, self.root = venv, root
        self.nodes, self.replicas, self.workers = nodes, replicas, workers
        self.pipeline, self.part_power = pipeline, part_power
        self.port = None

    def bin(self, name):
        return os.path.join(self.venv, "bin", name)

    def spawn(self, cmd, log):
        with open(log, "w") as logf:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                 start_new_session=True)
        with open(os.path.join(self.root, "pids"), "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def start(self):
        etc, log = os.path.join(self.root, "etc"), os.path.join(self.root, "log")
        for d in (etc, log):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(etc, "swift.conf"), "w") as f:
            f.write("[swift-hash]\nswift_hash_path_prefix = aioprefix\n"
                    "swift_hash_path_suffix = aiosuffix\n\n"
                    "[storage-policy:0]\nname = gold\ndefault = yes\n")
        ips = [f"127.0.0.{n + 2}" for n in range(self.nodes)]
        base = self._free_base(ips)
        kinds = {"object": base, "container": base + 1, "account": base + 2}
        for kind, port in kinds.items():
            b = os.path.join(etc, f"{kind}.builder")
            cmds = [["create", str(self.part_power), str(self.replicas), "1"]]
            cmds += [["add", f"r1z{n + 1}-{ip}:{port}/d0", "100"] for n, ip in enumerate(ips)]
            cmds += [["rebalance"]]
            for args in cmds:
                r = subprocess.run([self.bin("swift-ring-builder"), b] + args,
                                   capture_output=True, text=True)
                if r.returncode > 1:
                    raise SystemExit(f"swift-ring-builder {args}: {r.stdout}{r.stderr}")
        for n, ip in enumerate(ips):
            dev = os.path.join(self.root, "srv", f"node{n}")
            os.makedirs(os.path.join(dev, "d0"), exist_ok=True)
            for kind, port in kinds.items():
                conf = os.path.join(etc, f"{kind}-server-{n}.conf")
                with open(conf, "w") as f:
                    f.write(f"[DEFAULT]\nuser = {getpass.getuser()}\n"
                            f"devices = {dev}\nmount_check = false\n"
                            f"disable_fallocate = true\nbind_ip = {ip}\nbind_port = {port}\n"
                            f"workers = {self.workers}\nswift_dir = {etc}\n"
                            f"log_level = WARNING\n\n[pipeline:main]\n"
                            f"pipeline = {kind}-server\n\n[app:{kind}-server]\n"
                            f"use = egg:swift#{kind}\n\n"
                            f"[{kind}-replicator]\n[{kind}-updater]\n[{kind}-auditor]\n")
                self.spawn([self.bin(f"swift-{kind}-server"), conf],
                           os.path.join(log, f"{kind}-{n}.log"))
        for ip in ips:
            for kind, port in kinds.items():
                wait_listening(f"{ip}:{port}", f"Swift {kind} server")
        self.port = free_port("127.0.0.1")
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        filters = sorted({m for m in self.pipeline.split() if m != "proxy-server"})
        pconf = os.path.join(etc, "proxy-server.conf")
        with open(pconf, "w") as f:
            f.write(f"[DEFAULT]\nuser = {getpass.getuser()}\n"
                    f"bind_ip = 127.0.0.1\nbind_port = {self.port}\n"
                    f"workers = {self.workers}\nswift_dir = {etc}\nlog_level = WARNING\n\n"
                    f"[pipeline:main]\npipeline = {self.pipeline}\n\n"
                    "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
                    "allow_account_management = true\n\n"
                    f"[filter:tempauth]\nuse = egg:swift#tempauth\nfernet_key_k1 = {key}\n"
                    f"active_fernet_key_id = k1\n{USERS}\n"
                    + "".join(f"[filter:{m}]\nuse = egg:swift#{m.replace('-', '_')}\n"
                              for m in filters if m != "tempauth"))
        self.spawn([self.bin("swift-proxy-server"), pconf], os.path.join(log, "proxy.log"))
        wait_listening(f"127.0.0.1:{self.port}", "Swift proxy")
        return f"http://127.0.0.1:{self.port}/auth/v1.0"

    @staticmethod
    def _free_base(ips):
        for _ in range(200):
            base = free_port(ips[0])
            if base > 65000:
                continue
            try:
                for ip in ips:
                    for k in range(3):
                        with socket.socket() as s:
                            s.bind((ip, base + k))
                return base
            except OSError:
                continue
        raise SystemExit("no free port range on the node addresses")

    def stop(self):
        stop(self.root)


def stop(root):
    path = os.path.join(root, "pids")
    if not os.path.exists(path):
        return
    with open(path) as f:
        pids = [int(line) for line in f if line.strip()]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.remove(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start")
    st.add_argument("--dir", required=True)
    st.add_argument("--venv", default=os.environ.get("RINGSMITH_SWIFT_VENV"))
    st.add_argument("--nodes", type=int, default=3)
    st.add_argument("--replicas", type=int, default=3)
    st.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    st.add_argument("--part-power", type=int, default=10)
    st.add_argument("--pipeline", default=DEFAULT_PIPELINE)
    sp = sub.add_parser("stop")
    sp.add_argument("--dir", required=True)
    a = ap.parse_args()
    if a.cmd == "stop":
        stop(a.dir)
        return
    if not a.venv:
        raise SystemExit("--venv or RINGSMITH_SWIFT_VENV is needed (scripts/swift-venv.sh)")
    aio = SwiftAio(a.venv, a.dir, a.nodes, a.replicas, a.workers, a.pipeline, a.part_power)
    try:
        print(aio.start())
    except BaseException:
        aio.stop()
        raise


if __name__ == "__main__":
    sys.exit(main())
