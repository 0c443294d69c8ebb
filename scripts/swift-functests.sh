#!/usr/bin/env bash
# Runs Swift 2.38.3's own functional tests (test/functional from the swift sdist on PyPI)
# against a cluster on loopback.
#
#   scripts/swift-functests.sh ringsmith OUT [MODULES...]   fresh `ringsmith cluster up` per module
#   scripts/swift-functests.sh swift OUT [MODULES...]       fresh real Swift all-in-one per module
#
# OUT gets one line per test: `<passed|failed|skipped> <module>::<Class>::<test>`; pytest's
# output per module lands next to it in OUT.logs/. The sdist and pytest are cached with the
# Swift virtualenv; a failed download is an error, never a skip. Ringsmith's binaries come
# from $RINGSMITH_BIN_DIR (default: $CARGO_TARGET_DIR/debug or target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: $0 ringsmith|swift OUT [MODULES...]}"
out="${2:?usage: $0 ringsmith|swift OUT [MODULES...]}"
shift 2

venv="$(./scripts/swift-venv.sh)"
cache="$(dirname "$venv")/swift-sdist"
sdist="$cache/swift-2.38.3"
if [[ ! -f "$sdist/test/functional/tests.py" ]]; then
  echo "fetching the swift==2.38.3 sdist into $cache" >&2
  mkdir -p "$cache"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    swift==2.38.3 -d "$cache" >&2
  tar -xzf "$cache/swift-2.38.3.tar.gz" -C "$cache"
fi
if ! "$venv/bin/python" -c 'import pytest' 2>/dev/null; then
  echo "installing pytest into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check pytest >&2
fi

bindir="${RINGSMITH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}"
exec "$venv/bin/python" tests/swift_functional/run.py --target "$target" --venv "$venv" \
  --sdist "$sdist" --bindir "$bindir" --out "$out" --logdir "$out.logs" "$@"
