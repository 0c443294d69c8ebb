#!/usr/bin/env python3
"""A real Keystone (the OpenStack identity service) on loopback, for the proxy's keystone
tests: SQL backend on SQLite, Fernet tokens, served by Werkzeug's threaded WSGI server from
the Keystone virtualenv (scripts/keystone-venv.sh).

    keystone_aio.py start --dir D [--port P]
    keystone_aio.py stop --dir D

`start` writes D/keystone.conf, runs `keystone-manage db_sync`, `fernet_setup`,
`credential_setup` and `bootstrap`, starts the server on 127.0.0.1, waits until /v3
answers, creates the test identities through the v3 API and prints one JSON object:

    {"auth_url": "http://127.0.0.1:P/v3", "pid": N, "seconds": {...},
     "domains": {name: id}, "projects": {name: {"id", "domain_id"}},
     "users": {name: {"id", "password", "domain_id", "project", "project_id", "roles"}}}

Run it with the Keystone virtualenv's Python. `stop` kills exactly the process group it
started (its pid is in D/pid). Only 127.0.0.1 is used.
"""

import argparse
import getpass
import grp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ADMIN_PASSWORD = "keystone-admin-pw"

# (user, domain, project, roles): every user is scoped to its one project.
#   operator/operator2: the account owners of proj1/proj2 (Swift's `operator_roles`)
#   member/member2: plain project members, who only get what ACLs give them
#   reseller: ResellerAdmin, owner of every account
#   d2user: a user and project outside the default domain (names in ACLs do not count)
#   swift: the proxy's service user (validates tokens; the `service` role)
IDENTITIES = [
    ("operator", "default", "proj1", ["swiftoperator"]),
    ("member", "default", "proj1", ["member"]),
    ("member2", "default", "proj1", ["member"]),
    ("operator2", "default", "proj2", ["swiftoperator"]),
    ("reseller", "default", "resellerproj", ["ResellerAdmin"]),
    ("d2user", "dom2", "proj3", ["member"]),
    ("d2operator", "dom2", "proj3", ["swiftoperator"]),
    ("swift", "default", "service", ["service", "admin"]),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, log):
    with open(log, "a") as f:
        f.write(f"$ {' '.join(args)}\n")
        f.flush()
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-4000:]
        raise SystemExit(f"{' '.join(args)} failed ({r.returncode}):\n{tail}")


class Api:
    """The v3 API as the admin user, with plain urllib (nothing else to install)."""

    def __init__(self, base):
        self.base = base
        self.token = None

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token or self.token:
            req.add_header("X-Auth-Token", token or self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, headers, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, text = e.code, e.headers, e.read()
        if status not in expect:
            raise SystemExit(f"{method} {path}: {status} {text[:500]!r}")
        return status, headers, (json.loads(text) if text else None)

    def login(self, user, password, project, domain="default"):
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"id": domain}}}},
            "scope": {"project": {"name": project, "domain": {"id": domain}}}}}
        _, headers, _ = self.call("POST", "/auth/tokens", body, token="")
        return headers["X-Subject-Token"]

    def ensure(self, collection, key, entity, query):
        _, _, found = self.call("GET", f"/{collection}?{query}")
        if found[collection]:
            return found[collection][0]["id"]
        _, _, made = self.call("POST", f"/{collection}", {key: entity})
        return made[key]["id"]


def wait_for_api(base, proc, log, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            with open(log) as f:
                raise SystemExit(f"keystone exited ({proc.returncode}):\n{f.read()[-4000:]}")
        try:
            with urllib.request.urlopen(base, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    with open(log) as f:
        raise SystemExit(f"keystone did not answer {base} within {limit}s:\n{f.read()[-4000:]}")


def start(root, port):
    timings = {}
    t0 = time.time()
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    bindir = os.path.dirname(sys.executable)
    port = port or free_port()
    base = f"http://127.0.0.1:{port}/v3"
    conf = os.path.join(root, "keystone.conf")
    log = os.path.join(root, "keystone.log")
    with open(conf, "w") as f:
        f.write(
            "[DEFAULT]\n"
            "[database]\n"
            f"connection = sqlite:///{root}/keystone.db\n"
            "[token]\nprovider = fernet\nexpiration = 3600\n"
            f"[fernet_tokens]\nkey_repository = {root}/fernet-keys\n"
            f"[fernet_receipts]\nkey_repository = {root}/fernet-keys\n"
            f"[credential]\nkey_repository = {root}/credential-keys\n"
            # Few bcrypt rounds: every token request hashes the password.
            "[identity]\npassword_hash_rounds = 4\n"
            "[cache]\nenabled = false\n"
        )
    manage = [os.path.join(bindir, "keystone-manage"), "--config-file", conf]
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    run(manage + ["db_sync"], log)
    timings["db_sync"] = round(time.time() - t0, 1)
    for setup in ("fernet_setup", "credential_setup"):
        run(manage + [setup, "--keystone-user", user, "--keystone-group", group], log)
    run(manage + ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                  "--bootstrap-admin-url", base, "--bootstrap-public-url", base,
                  "--bootstrap-internal-url", base, "--bootstrap-region-id", "RegionOne"], log)
    timings["manage"] = round(time.time() - t0, 1)

    server = (
        # oslo.config reads sys.argv: the port comes in the environment.
        "import os\n"
        "from werkzeug.serving import run_simple\n"
        "from keystone.wsgi.api import application\n"
        "run_simple('127.0.0.1', int(os.environ['KEYSTONE_AIO_PORT']), application,\n"
        "           threaded=True)\n"
    )
    env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=conf, KEYSTONE_AIO_PORT=str(port))
    with open(log, "a") as f:
        proc = subprocess.Popen([sys.executable, "-c", server], env=env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                start_new_session=True)
    with open(os.path.join(root, "pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    try:
        wait_for_api(base, proc, log)
        timings["serving"] = round(time.time() - t0, 1)
        api = Api(base)
        api.token = api.login("admin", ADMIN_PASSWORD, "admin")
        domains = {"default": "default"}
        domains["dom2"] = api.ensure("domains", "domain", {"name": "dom2"}, "name=dom2")
        projects, users, roles = {}, {}, {}
        for name, domain, project, role_names in IDENTITIES:
            dom_id = domains[domain]
            if project not in projects:
                pid = api.ensure("projects", "project", {"name": project, "domain_id": dom_id},
                                 f"name={project}&domain_id={dom_id}")
                projects[project] = {"id": pid, "domain_id": dom_id}
            password = f"{name}-pw"
            uid = api.ensure("users", "user",
                             {"name": name, "password": password, "domain_id": dom_id},
                             f"name={name}&domain_id={dom_id}")
            for role in role_names:
                if role not in roles:
                    roles[role] = api.ensure("roles", "role", {"name": role}, f"name={role}")
                api.call("PUT", f"/projects/{projects[project]['id']}/users/{uid}"
                                f"/roles/{roles[role]}")
            users[name] = {"id": uid, "name": name, "password": password, "domain_id": dom_id,
                           "project": project, "project_id": projects[project]["id"],
                           "roles": role_names}
        timings["ready"] = round(time.time() - t0, 1)
    except BaseException:
        stop(root)
        raise
    print(json.dumps({"auth_url": base, "pid": proc.pid, "seconds": timings,
                      "admin_password": ADMIN_PASSWORD, "domains": domains,
                      "projects": projects, "users": users}))


def stop(root):
    path = os.path.join(root, "pid")
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.remove(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    if a.action == "start":
        start(a.dir, a.port)
    else:
        stop(a.dir)


if __name__ == "__main__":
    main()
