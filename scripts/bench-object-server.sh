#!/usr/bin/env bash
# 4 KiB object PUT and GET requests/s: Ringsmith's object server vs Swift 2.38.3's, same
# machine, same run, same load generator (server/examples/object_load.rs).
#
#   scripts/bench-object-server.sh [requests] [concurrency] [size]
#
# Both servers get a fresh device directory on the same filesystem, mount_check off and
# fsync on every write (both always fsync). Swift runs with `workers = N` (N = CPU
# count) processes; Ringsmith runs one process with a tokio thread per CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=${1:-5000}
export RUST_BACKTRACE=0
CONC=${2:-16}
SIZE=${3:-4096}
VENV=${RINGSMITH_SWIFT_VENV:-$HOME/.cache/ringsmith/swift-venv}
[[ -x $VENV/bin/swift-object-server ]] || { echo "Swift virtualenv missing at $VENV (run scripts/swift-venv.sh)" >&2; exit 1; }
cargo build --release -q -p ringsmith-server --bin ringsmith-server --example object_load
BIN=target/release/ringsmith-server
LOAD=target/release/examples/object_load
WORK=$(mktemp -d)
PIDS=()
cleanup() { [[ ${KEEP_LOGS:-} ]] && tail -n 20 "$WORK"/*.log >&2; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
CPUS=$(nproc)
cat > "$WORK/swift.conf" <<CONF
[swift-hash]
swift_hash_path_prefix = benchprefix
swift_hash_path_suffix = benchsuffix
[storage-policy:0]
name = Policy-0
default = yes
CONF
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
conf() { # name port workers
  mkdir -p "$WORK/$1/sda1"
  cat > "$WORK/$1.conf" <<CONF
[DEFAULT]
devices = $WORK/$1
mount_check = false
bind_ip = 127.0.0.1
bind_port = $2
workers = $3
user = root
swift_dir = $WORK
recon_cache_path = $WORK
log_level = WARNING
disable_fallocate = true
fallocate_reserve = 0
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
CONF
}
wait_port() { for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

RS_PORT=$(free_port); conf rs "$RS_PORT" "$CPUS"
SW_PORT=$(free_port); conf sw "$SW_PORT" "$CPUS"
RINGSMITH_LOG=warn "$BIN" object -c "$WORK/rs.conf" 2>"$WORK/rs.log" & PIDS+=($!)
"$VENV/bin/swift-object-server" "$WORK/sw.conf" >"$WORK/sw.log" 2>&1 & PIDS+=($!)
wait_port "$RS_PORT"; wait_port "$SW_PORT"
echo "requests=$REQ concurrency=$CONC size=$SIZE cpus=$CPUS"
# Warm up both, then measure Swift first and Ringsmith second, then both again.
"$LOAD" "http://127.0.0.1:$SW_PORT/sda1" 200 "$CONC" "$SIZE" >/dev/null
"$LOAD" "http://127.0.0.1:$RS_PORT/sda1" 200 "$CONC" "$SIZE" >/dev/null
for round in 1 2; do
  SW=$("$LOAD" "http://127.0.0.1:$SW_PORT/sda1" "$REQ" "$CONC" "$SIZE")
  RS=$("$LOAD" "http://127.0.0.1:$RS_PORT/sda1" "$REQ" "$CONC" "$SIZE")
  for phase in PUT GET; do
    s=$(awk -v p=$phase '$1==p{print $2}' <<<"$SW"); r=$(awk -v p=$phase '$1==p{print $2}' <<<"$RS")
    printf 'round %d %s: swift %6s req/s  ringsmith %6s req/s  ratio %.1fx\n' "$round" "$phase" "$s" "$r" "$(echo "$r / $s" | bc -l)"
  done
done
