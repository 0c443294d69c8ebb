#!/usr/bin/env python3
"""Runs Swift 2.38.3's own functional tests against a cluster on loopback.

Targets:
  ringsmith  a fresh `ringsmith cluster up` per module (1 node, consistency daemons on)
  swift      a fresh real Swift 2.38.3 all-in-one per module (from the venv)

Each module gets its own cluster, so a failure in one cannot spoil another, and the
modules can run in any order with the same result. Writes one line per test to --out:
`<outcome> <module>::<Class>::<test>` (outcome: passed, failed, skipped).

Every process started is stopped by pid; every address is 127.0.0.x.
"""

import argparse
import base64
import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import urllib.request
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import swift_aio  # noqa: E402  (the shared loopback helpers)
from swift_aio import wait_listening  # noqa: E402

# The longest modules first (`tests` and `tests@ec`, about a minute each, start
# together), so that modules running side by side finish together.
MODULES = ["tests", "test_object_versioning", "test_symlink", "test_slo", "test_object",
           "test_versioned_writes", "test_account", "test_container", "test_protocol",
           "test_dlo", "test_tempurl", "test_staticweb", "test_access_control"]
# `MODULE@ec`: the module against a cluster whose default policy is erasure-coded (4+2,
# liberasurecode_rs_vand, six devices); its results are named `MODULE@ec::...`.
MODULES[1:1] = ["tests@ec", "test_slo@ec", "test_object@ec", "test_container@ec",
                "test_dlo@ec", "test_account@ec"]

# The users test.conf names; the clusters define the same ones in tempauth.
TEST_CONF_USERS = """\
auth_uri = http://127.0.0.1:{port}/auth/v1.0
account = test
username = tester
password = testing
account2 = test2
username2 = tester2
password2 = testing2
username3 = tester3
password3 = testing3
account5 = test5
username5 = tester5
password5 = testing5
service_prefix = SERVICE
account6 = admin
username6 = admin
password6 = admin
collate = C
insecure = no
"""

# Swift's tempauth users for the all-in-one (Ringsmith's come from `cluster up`).
SWIFT_USERS = """\
reseller_prefix = AUTH, SERVICE
SERVICE_require_group = service
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester2 = testing2 .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2 .admin
user_test5_tester5 = testing5 service
"""

CONSTRAINT_KEYS = [
    "max_file_size", "max_meta_name_length", "max_meta_value_length", "max_meta_count",
    "max_meta_overall_size", "max_header_size", "extra_header_count",
    "max_object_name_length", "container_listing_limit", "account_listing_limit",
    "max_account_name_length", "max_container_name_length",
]


def free_port(ip="127.0.0.1"):
    return swift_aio.free_port(ip)


def info_constraints(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=10) as r:
        info = json.load(r)
    swift = info.get("swift", {})
    return {k: swift[k] for k in CONSTRAINT_KEYS if k in swift}, info


def write_test_conf(path, port, constraints):
    text = "[func_test]\n" + TEST_CONF_USERS.format(port=port)
    text += "\n[swift-constraints]\n"
    for k, v in constraints.items():
        text += f"{k} = {v}\n"
    text += "strict_cors_mode = true\n"
    with open(path, "w") as f:
        f.write(text)


class RingsmithCluster:
    def __init__(self, bindir, work, ec=False):
        self.ec = ec
        self.bindir = bindir
        self.dir = os.path.join(work, "cluster")
        self.port = None

    def start(self):
        self.port = free_port()
        base = free_base()
        cmd = [os.path.join(self.bindir, "ringsmith"), "cluster", "up", "--dir", self.dir,
               "--nodes", "1", "--proxy-port", str(self.port), "--base-port", str(base),
               "--server-bin", os.path.join(self.bindir, "ringsmith-server")]
        # Tokens and info on a memcached (`cluster up --memcached`) instead of in-process.
        if os.environ.get("RINGSMITH_FUNCTEST_MEMCACHED"):
            cmd.append("--memcached")
        if self.ec:
            cmd += ["--disks", "6", "--ec-policy", "4+2", "--ec-default"]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"ringsmith cluster up failed:\n{r.stdout}{r.stderr}")
        wait_listening(f"127.0.0.1:{self.port}", "ringsmith proxy")

    def stop(self):
        subprocess.run([os.path.join(self.bindir, "ringsmith"), "cluster", "down", "--dir",
                        self.dir], stdin=subprocess.DEVNULL, capture_output=True)


def free_base():
    for _ in range(200):
        base = free_port("127.0.0.2")
        if base > 65000:
            continue
        ok = True
        for k in range(3):
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.2", base + k))
            except OSError:
                ok = False
        if ok:
            return base
    raise SystemExit("no free port range on 127.0.0.2")


class SwiftAio:
    """Real Swift 2.38.3: account, container, object servers and proxy, one device."""

    def __init__(self, venv, work, ec=False):
        self.ec = ec
        self.venv = venv
        self.root = os.path.join(work, "swift")
        self.procs = []
        self.port = None

    def bin(self, name):
        return os.path.join(self.venv, "bin", name)

    def start(self):
        etc = os.path.join(self.root, "etc")
        dev = os.path.join(self.root, "srv", "d0")
        log = os.path.join(self.root, "log")
        for d in (etc, dev, log):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(etc, "swift.conf"), "w") as f:
            f.write("[swift-hash]\nswift_hash_path_prefix = fnprefix\n"
                    "swift_hash_path_suffix = fnsuffix\n\n"
                    "[storage-policy:0]\nname = gold\n")
            f.write("[storage-policy:1]\nname = ec4-2\npolicy_type = erasure_coding\n"
                    "ec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\n"
                    "ec_num_parity_fragments = 2\ndefault = yes\n" if self.ec
                    else "default = yes\n")
        # Swift's servers read policies from /etc/swift/swift.conf whatever swift_dir
        # says: with an EC policy they are started through a wrapper reading this one.
        self.etc = etc
        if self.ec:
            for d in range(1, 6):
                os.makedirs(os.path.join(self.root, "srv", f"d{d}"), exist_ok=True)
        ip = "127.0.0.2"
        ports = {k: free_port(ip) for k in ("object", "container", "account")}
        for kind, port in ports.items():
            b = os.path.join(etc, f"{kind}.builder")
            for args in (["create", "6", "1", "1"], ["add", f"r1z1-{ip}:{port}/d0", "100"],
                         ["rebalance"]):
                subprocess.run([self.bin("swift-ring-builder"), b] + args, check=True,
                               capture_output=True)
            if kind == "object" and self.ec:
                b = os.path.join(etc, "object-1.builder")
                steps = ([["create", "6", "6", "1"]]
                         + [["add", f"r1z1-{ip}:{port}/d{d}", "100"] for d in range(6)]
                         + [["rebalance"]])
                for args in steps:
                    subprocess.run([self.bin("swift-ring-builder"), b] + args, check=True,
                                   capture_output=True)
            conf = os.path.join(etc, f"{kind}-server.conf")
            with open(conf, "w") as f:
                f.write(f"[DEFAULT]\ndevices = {os.path.dirname(dev)}\nmount_check = false\n"
                        f"disable_fallocate = true\nbind_ip = {ip}\nbind_port = {port}\n"
                        f"workers = 0\nswift_dir = {etc}\nlog_level = WARNING\n\n"
                        f"[pipeline:main]\npipeline = {kind}-server\n\n"
                        f"[app:{kind}-server]\nuse = egg:swift#{kind}\n\n"
                        f"[{kind}-replicator]\n[{kind}-updater]\n[{kind}-auditor]\n")
            self.spawn([self.bin(f"swift-{kind}-server"), conf], os.path.join(log, kind))
        for kind, port in ports.items():
            wait_listening(f"{ip}:{port}", f"Swift {kind} server")
        self.port = free_port()
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        pconf = os.path.join(etc, "proxy-server.conf")
        with open(pconf, "w") as f:
            f.write(
                f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {self.port}\nworkers = 0\n"
                f"swift_dir = {etc}\nlog_level = WARNING\n\n[pipeline:main]\n"
                "pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats "
                "bulk tempurl ratelimit tempauth formpost staticweb copy container-quotas "
                "account-quotas slo dlo versioned_writes symlink "
                "proxy-logging "
                "proxy-server\n\n"
                "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
                "allow_account_management = true\n\n"
                f"[filter:tempauth]\nuse = egg:swift#tempauth\nfernet_key_k1 = {key}\n"
                f"active_fernet_key_id = k1\n{SWIFT_USERS}\n"
                + "".join(f"[filter:{m}]\nuse = egg:swift#{m.replace('-', '_')}\n" for m in (
                    "catch_errors", "gatekeeper", "healthcheck", "proxy-logging",
                    "listing_formats", "bulk", "tempurl", "ratelimit", "formpost", "staticweb",
                    "copy", "container-quotas", "account-quotas", "slo", "dlo", "symlink"))
                # Both versioning styles, as Swift's sample (SAIO) proxy config enables them.
                + "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\n"
                "allow_versioned_writes = true\nallow_object_versioning = true\n")
        self.spawn([self.bin("swift-proxy-server"), pconf], os.path.join(log, "proxy"))
        wait_listening(f"127.0.0.1:{self.port}", "Swift proxy")

    def spawn(self, cmd, logpath):
        if self.ec:
            wrapper = ("import sys, runpy\nimport swift.common.utils as u\n"
                       "u.SWIFT_CONF_FILE = sys.argv[1]\n"
                       "from swift.common import storage_policy\n"
                       "storage_policy.reload_storage_policies()\n"
                       "sys.argv = sys.argv[2:]\n"
                       "runpy.run_path(sys.argv[0], run_name='__main__')\n")
            cmd = [self.bin("python3"), "-c", wrapper,
                   os.path.join(self.etc, "swift.conf")] + cmd
        logf = open(logpath + ".log", "w")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True)
        self.procs.append(p)

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.procs = []


# Modules whose setUp HEADs the account before anything wrote to it. A fresh Swift
# all-in-one answers that HEAD (of an account autocreate has not made yet) 200, not the
# 204 these setUps demand, so every test of theirs would error on Swift for a reason
# that has nothing to do with what they test (Swift's gate runs them after modules that
# created the accounts). For these modules the test users' accounts are created first,
# with a POST by their owners, on both targets alike.
ACCOUNTS_FIRST = {"test_tempurl", "test_staticweb"}


def create_accounts(port):
    for user, key in (("test:tester", "testing"), ("test2:tester2", "testing2")):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/v1.0",
                                     headers={"X-Auth-User": user, "X-Auth-Key": key})
        with urllib.request.urlopen(req, timeout=10) as r:
            token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
        req = urllib.request.Request(url, method="POST", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status // 100 != 2:
                raise SystemExit(f"creating the account of {user}: {r.status}")


def parse_junit(path, module):
    results = {}
    tree = ET.parse(path)
    for case in tree.iter("testcase"):
        cls = case.get("classname", "").split(".")[-1]
        name = f"{module}::{cls}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A test that errors in teardown after passing is reported twice: failed wins.
        if results.get(name) != "failed":
            results[name] = outcome
    return results


def work_root():
    """Where the clusters keep their devices: a filesystem whose extended attributes hold
    Swift's object metadata. ext4 caps a file's xattrs near 4 KiB, and the metadata of
    tests.py's TestFile::testMetadataNumberLimit (90 items, 4 KiB of names and values)
    pickles to about 6.5 KiB, which Swift's object server and ours both answer with 507
    there (Swift's docs ask for XFS). tmpfs (Linux 6.6 and later) holds it, and is faster;
    without it the system temp dir is used and that test fails on ext4."""
    shm = "/dev/shm"
    if not os.path.isdir(shm):
        return None
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix="rs-xattr-probe-", dir=shm)
        os.close(fd)
        for i in range(40):
            os.setxattr(probe, f"user.probe{i}", b"x" * 254)
        return shm
    except OSError:
        return None
    finally:
        if probe:
            os.unlink(probe)


# Modules run side by side, each against a cluster of its own; clusters start one at a
# time, so that two never pick the same free ports before either has bound them.
START_LOCK = threading.Lock()


def run_module(args, module, work):
    module, _, variant = module.partition("@")
    ec = variant == "ec"
    cluster = (RingsmithCluster(args.bindir, work, ec) if args.target == "ringsmith"
               else SwiftAio(args.venv, work, ec))
    name = module + ("@ec" if ec else "")
    try:
        with START_LOCK:
            cluster.start()
        constraints, _ = info_constraints(cluster.port)
        conf = os.path.join(work, "test.conf")
        write_test_conf(conf, cluster.port, constraints)
        if module in ACCOUNTS_FIRST:
            create_accounts(cluster.port)
        junit = os.path.join(work, "junit.xml")
        env = dict(os.environ, SWIFT_TEST_CONFIG_FILE=conf, PYTHONDONTWRITEBYTECODE="1")
        cmd = [os.path.join(args.venv, "bin", "python"), "-m", "pytest", "-q",
               "-p", "no:cacheprovider", f"--junitxml={junit}",
               f"test/functional/{module}.py"]
        r = subprocess.run(cmd, cwd=args.sdist, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=args.module_timeout)
        if not os.path.exists(junit):
            raise SystemExit(f"pytest wrote no results for {module}:\n{r.stdout[-4000:]}"
                             f"{r.stderr[-4000:]}")
        with open(os.path.join(args.logdir, f"{name}.pytest.txt"), "w") as f:
            f.write(r.stdout + r.stderr)
        return parse_junit(junit, name)
    finally:
        cluster.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["ringsmith", "swift"], required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--sdist", required=True, help="the extracted swift-2.38.3 sdist")
    ap.add_argument("--bindir", help="where ringsmith and ringsmith-server are")
    ap.add_argument("--out", required=True)
    ap.add_argument("--logdir", required=True)
    ap.add_argument("--module-timeout", type=int, default=600)
    ap.add_argument("--jobs", type=int,
                    default=int(os.environ.get("RINGSMITH_FUNCTEST_JOBS", "2")),
                    help="modules run at once, each with its own cluster (default 2, or "
                         "$RINGSMITH_FUNCTEST_JOBS)")
    ap.add_argument("modules", nargs="*", default=MODULES)
    args = ap.parse_args()
    os.makedirs(args.logdir, exist_ok=True)
    results = {}
    started = time.time()
    root = work_root()
    print(f"{args.target}: clusters under {root or tempfile.gettempdir()}", flush=True)

    def one(module):
        t0 = time.time()
        work = tempfile.mkdtemp(prefix=f"rs-functest-{module}-", dir=root)
        try:
            res = run_module(args, module, work)
        finally:
            if not os.environ.get("RINGSMITH_FUNCTEST_KEEP"):
                shutil.rmtree(work, ignore_errors=True)
        counts = {o: sum(1 for v in res.values() if v == o)
                  for o in ("passed", "failed", "skipped")}
        print(f"{args.target} {module}: {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['skipped']} skipped in {time.time() - t0:.0f} s", flush=True)
        return res

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # In the given order; a module's failure to run at all ends the run.
        for res in pool.map(one, args.modules):
            results.update(res)
    # The gate reads where the devices were: on a disk whose xattrs are capped, tests
    # that need more (needs-large-xattrs.txt) fail for Swift too, and are not checked.
    with open(args.out + ".devices", "w") as f:
        f.write("tmpfs\n" if root else "disk\n")
    with open(args.out, "w") as f:
        for name in sorted(results):
            f.write(f"{results[name]} {name}\n")
    print(f"{args.target}: {len(results)} tests in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
