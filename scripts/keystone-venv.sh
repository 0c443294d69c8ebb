#!/usr/bin/env bash
# Ensures a virtualenv with a real Keystone (30.0.0, SQL backend on SQLite, Fernet tokens)
# for the keystone tests, and keystonemiddleware 13.0.1 in the Swift virtualenv so that
# Swift's own proxy runs `authtoken` + `keystoneauth` as the oracle. Prints the Keystone
# virtualenv's path. Idempotent; cached across runs. Versions are pinned by
# scripts/keystone-constraints.txt (resolved together once, then frozen).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
constraints="$here/keystone-constraints.txt"
venv="${RINGSMITH_KEYSTONE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/keystone-venv}"
if [[ ! -x "$venv/bin/keystone-manage" ]] \
  || ! "$venv/bin/python" -c 'import keystone.wsgi, werkzeug, keystonemiddleware' 2>/dev/null; then
  echo "installing Keystone 30.0.0 into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" \
    keystone==30.0.0 keystonemiddleware==13.0.1 >&2
fi
swift_venv="${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}"
if [[ -x "$swift_venv/bin/python" ]] \
  && ! "$swift_venv/bin/python" -c 'import keystonemiddleware.auth_token' 2>/dev/null; then
  echo "installing keystonemiddleware 13.0.1 into $swift_venv" >&2
  # Only what keystonemiddleware adds is pinned: the Swift venv's own packages stay as
  # they are.
  swift_constraints="$(mktemp)"
  trap 'rm -f "$swift_constraints"' EXIT
  "$swift_venv/bin/python" - "$constraints" >"$swift_constraints" <<'PY'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {norm(d.metadata["Name"]) for d in distributions()}
for line in open(sys.argv[1]):
    line = line.strip()
    if line and not line.startswith("#") and norm(line.split("==")[0]) not in have:
        print(line)
PY
  "$swift_venv/bin/pip" install --quiet --disable-pip-version-check -c "$swift_constraints" \
    keystonemiddleware==13.0.1 >&2
fi
echo "$venv"
