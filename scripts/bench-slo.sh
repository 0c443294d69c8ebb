#!/usr/bin/env bash
# A 1 GiB SLO of 100 segments against a plain 1 GiB object on one `ringsmith cluster up`
# (1 node, loopback): GET throughput of each, their ratio, and the proxy's peak resident
# memory during the SLO GET (VmHWM, reset just before it through /proc/PID/clear_refs).
#
#   scripts/bench-slo.sh             the release build if it exists, else the debug build
#   BENCH_BUILD=debug scripts/bench-slo.sh
#   BENCH_SLO_GIB=5 scripts/bench-slo.sh   5 GiB each (Swift's largest plain object), still
#                                          100 segments
#
# The plain object is deleted before the segments are written, so the run needs about
# BENCH_SLO_GIB GiB of free disk. Every process started is stopped (cluster down) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
build="${BENCH_BUILD:-}"
if [[ -z "$build" ]]; then
  if [[ -x "$target/release/ringsmith" && -x "$target/release/ringsmith-server" ]]; then
    build=release
  else
    build=debug
  fi
fi
bin="$target/$build"
[[ -x "$bin/ringsmith" && -x "$bin/ringsmith-server" ]] || {
  echo "build first: cargo build ${build/debug/} -p ringsmith-cli -p ringsmith-server" >&2
  exit 1
}
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(min(s.getsockname()[1], 60000))')"
cleanup() {
  "$bin/ringsmith" cluster down --dir "$work/c" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin/ringsmith" cluster up --dir "$work/c" --nodes 1 --proxy-port "$port" --base-port "$base" \
  --server-bin "$bin/ringsmith-server" >/dev/null
url="http://127.0.0.1:$port"
proxy_pid="$(python3 -c "import json,sys; print([p['pid'] for p in json.load(open('$work/c/run/cluster.json'))['procs'] if p['kind']=='proxy'][0])")"
token="$(curl -s -i -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$url/auth/v1.0" |
  tr -d '\r' | awk 'tolower($1)=="x-auth-token:" {print $2}')"
auth=(-H "X-Auth-Token: $token")
gib="${BENCH_SLO_GIB:-1}"
[[ "$gib" =~ ^[1-5]$ ]] || { echo "BENCH_SLO_GIB must be 1 to 5 (Swift's max_file_size is 5 GiB)" >&2; exit 1; }
total=$((gib * 1024 * 1024 * 1024))
nseg=100
seg=$((total / nseg))
last=$((total - seg * (nseg - 1)))
curl -sf -X PUT "${auth[@]}" "$url/v1/AUTH_test/bench" -o /dev/null
curl -sf -X PUT "${auth[@]}" "$url/v1/AUTH_test/bench_segments" -o /dev/null

get() { # prints seconds and bytes of one GET to /dev/null
  curl -sf "${auth[@]}" "$url/v1/AUTH_test/$1" -o /dev/null -w '%{time_total} %{size_download}\n'
}

# The plain object, from a stream of random bytes (no such file on disk).
head -c "$total" /dev/urandom |
  curl -sf -X PUT "${auth[@]}" -H 'Transfer-Encoding: chunked' -T - "$url/v1/AUTH_test/bench/plain" -o /dev/null
read -r plain_s plain_bytes < <(get bench/plain)
curl -sf -X DELETE "${auth[@]}" "$url/v1/AUTH_test/bench/plain" -o /dev/null

# 100 segments (one random block of a segment's size, each segment its own object) and
# the manifest.
head -c "$last" /dev/urandom >"$work/block"
manifest="["
for i in $(seq -w 0 $((nseg - 1))); do
  size=$seg
  [[ "$i" == "$((nseg - 1))" ]] && size=$last
  etag="$(head -c "$size" "$work/block" |
    curl -sf -X PUT "${auth[@]}" -T - -H "Content-Length: $size" \
      "$url/v1/AUTH_test/bench_segments/s$i" -D - -o /dev/null |
    tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')"
  manifest+="{\"path\": \"/bench_segments/s$i\", \"etag\": \"$etag\", \"size_bytes\": $size},"
done
manifest="${manifest%,}]"
printf '%s' "$manifest" >"$work/manifest.json"
curl -sf -X PUT "${auth[@]}" -T "$work/manifest.json" \
  "$url/v1/AUTH_test/bench/slo?multipart-manifest=put" -o /dev/null
rss_before_kib="$(awk '/^VmRSS/ {print $2}' "/proc/$proxy_pid/status")"
echo 5 >"/proc/$proxy_pid/clear_refs"
read -r slo_s slo_bytes < <(get bench/slo)
hwm_kib="$(awk '/^VmHWM/ {print $2}' "/proc/$proxy_pid/status")"
[[ "$slo_bytes" == "$total" && "$plain_bytes" == "$total" ]] || {
  echo "short GET: plain $plain_bytes, slo $slo_bytes of $total bytes" >&2
  exit 1
}
python3 - "$build" "$plain_s" "$slo_s" "$rss_before_kib" "$hwm_kib" "$gib" <<'EOF'
import sys
build, plain_s, slo_s, before, hwm = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
gib = int(sys.argv[6])
mib = 1024
print(f"build: {build}; {gib} GiB each, 1 node on loopback")
print(f"plain object GET: {plain_s:6.2f} s  {gib * 1024 / plain_s:7.1f} MiB/s")
print(f"SLO (100 segs) GET: {slo_s:6.2f} s  {gib * 1024 / slo_s:7.1f} MiB/s")
print(f"SLO/plain throughput ratio: {plain_s / slo_s:.2f}")
print(f"proxy RSS before the SLO GET: {before / mib:.1f} MiB; peak during it (VmHWM): {hwm / mib:.1f} MiB")
EOF
echo "load: $(uptime)"
