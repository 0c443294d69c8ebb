#!/usr/bin/env bash
# Ensures a virtualenv with the real Swift 2.38.3 and python-swiftclient, the compatibility
# oracle for the interop tests. Prints its path. Idempotent; cached across runs.
set -euo pipefail
venv="${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}"
if [[ ! -x "$venv/bin/swift-ring-builder" ]] || ! "$venv/bin/python" -c 'import swift, swiftclient' 2>/dev/null; then
  echo "installing Swift 2.38.3 into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check swift==2.38.3 python-swiftclient >&2
fi
echo "$venv"
