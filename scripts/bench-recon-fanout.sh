#!/usr/bin/env bash
# Fan-out benchmark: swift-recon vs ringsmith recon on a fake cluster of 1,000 hosts
# (127.0.X.Y, one port) that answer /recon/async after a delay, some never answering.
# usage: scripts/bench-recon-fanout.sh [HOSTS] [DELAY] [HANG] [TIMEOUT]
set -euo pipefail
HOSTS=${1:-1000}; DELAY=${2:-0.2}; HANG=${3:-0}; TIMEOUT=${4:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RINGSMITH_SWIFT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringsmith/swift-venv}
bin=${RINGSMITH_BIN:-$root/target/debug/ringsmith}
[ -x "$venv/bin/swift-recon" ] || { echo "no Swift venv at $venv (scripts/swift-venv.sh)"; exit 1; }
[ -x "$bin" ] || { echo "no ringsmith binary at $bin (cargo build -p ringsmith-cli)"; exit 1; }
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$root/scripts/recon_fake_cluster.py" "$dir" "$HOSTS" "$DELAY" "$HANG" "$port" > "$dir/fake.log" 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null; wait $fake 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do grep -q ready "$dir/fake.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$dir/fake.log" || { cat "$dir/fake.log"; exit 1; }
printf "[swift-hash]\nswift_hash_path_suffix = bench\n\n[storage-policy:0]\nname = gold\ndefault = yes\n" > "$dir/swift.conf"
run() { # name cmd...
  local t0 t1
  t0=$(date +%s.%N); "${@:2}" > "$dir/$1.out" 2>&1 || true; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
s=$(run swift "$venv/bin/swift-recon" --swiftdir "$dir" -a --suppress -t "${TIMEOUT%.*}")
r=$(run ours "$bin" recon --swiftdir "$dir" -a --suppress -t "$TIMEOUT")
echo "hosts=$HOSTS delay=${DELAY}s hanging=$HANG timeout=${TIMEOUT}s"
echo "swift-recon:    ${s}s   $(grep -h 'async_pending\]' "$dir/swift.out" || tail -1 "$dir/swift.out")"
echo "ringsmith recon: ${r}s   $(grep -h 'async_pending\]' "$dir/ours.out" || tail -1 "$dir/ours.out")"
echo "ratio: $(echo "scale=1; $s / $r" | bc)x"
