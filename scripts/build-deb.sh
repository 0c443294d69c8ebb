#!/usr/bin/env bash
# Builds the Debian package of Ringsmith with dpkg-deb:
#   /usr/bin/ringsmith, /usr/bin/ringsmith-server
#   /usr/share/man/man1/ringsmith*.1            (ringsmith man --dir, packaging/man)
#   bash, zsh and fish completions              (ringsmith completions SHELL)
#   /usr/lib/systemd/system/ringsmith-*.service (packaging/systemd)
#
# Usage: scripts/build-deb.sh [--bin-dir DIR] [--out DIR]
#   --bin-dir DIR  package the ringsmith and ringsmith-server binaries found in DIR
#                  instead of building them (cargo build --release)
#   --out DIR      where the .deb goes (default: target/debian)
#   --fast         gzip -1 instead of xz (for tests that package debug binaries)
# Prints the path of the package it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=""
out_dir="${CARGO_TARGET_DIR:-target}/debian"
compress=()
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb is needed (package dpkg)" >&2; exit 2; }

if [[ -z "$bin_dir" ]]; then
  cargo build --release --locked -p ringsmith-cli -p ringsmith-server >&2
  bin_dir="${CARGO_TARGET_DIR:-target}/release"
fi
for b in ringsmith ringsmith-server; do
  [[ -x "$bin_dir/$b" ]] || { echo "build-deb.sh: no $b in $bin_dir" >&2; exit 2; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
mkdir -p "$out_dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/ringsmith_${version}_${arch}"

install -D -m 0755 "$bin_dir/ringsmith" "$root/usr/bin/ringsmith"
install -D -m 0755 "$bin_dir/ringsmith-server" "$root/usr/bin/ringsmith-server"

mkdir -p "$root/usr/share/man/man1"
"$root/usr/bin/ringsmith" man --dir "$root/usr/share/man/man1" >/dev/null
install -m 0644 packaging/man/ringsmith-server.1 "$root/usr/share/man/man1/"
gzip -9n "$root/usr/share/man/man1/"*.1

install -d "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$root/usr/bin/ringsmith" completions bash >"$root/usr/share/bash-completion/completions/ringsmith"
"$root/usr/bin/ringsmith" completions zsh >"$root/usr/share/zsh/vendor-completions/_ringsmith"
"$root/usr/bin/ringsmith" completions fish >"$root/usr/share/fish/vendor_completions.d/ringsmith.fish"

install -d "$root/usr/lib/systemd/system"
install -m 0644 packaging/systemd/* "$root/usr/lib/systemd/system/"

install -d "$root/usr/share/doc/ringsmith"
install -m 0644 README.md docs/service-management.md "$root/usr/share/doc/ringsmith/"
cat >"$root/usr/share/doc/ringsmith/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ringsmith
License: Apache-2.0
EOF

size=$(du -sk "$root" | cut -f1)
install -d "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: ringsmith
Version: $version
Architecture: $arch
Maintainer: Ringsmith developers <ringsmith@localhost>
Installed-Size: $size
Depends: libc6, libgcc-s1, passwd
Section: admin
Priority: optional
Description: OpenStack Swift compatible servers and operator tools
 ringsmith: swift-ring-builder, swift-recon, swift-get-nodes, swift-init and the
 other operator tools; ringsmith-server: Swift's proxy, account, container and
 object servers and their daemons, with the same file formats and HTTP API.
 systemd units for every server and daemon are included (not enabled).
EOF
# Units are shipped, not enabled: the configs in /etc/swift come first. They run as the
# `swift` user (as Swift's own packages do), which the package creates if it is missing,
# with the directories Swift's daemons write to (recon cache, state) owned by it. The
# user stays when the package is removed or purged (Debian's convention: files it owns
# may remain elsewhere).
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group swift >/dev/null || groupadd --system swift
  getent passwd swift >/dev/null || useradd --system --gid swift --home-dir /var/lib/swift \
    --no-create-home --shell /usr/sbin/nologin --comment "Swift object storage" swift
  install -d -o swift -g swift -m 0755 /var/lib/swift /var/cache/swift
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # Only when empty: what an operator left there is theirs.
  rmdir --ignore-fail-on-non-empty /var/cache/swift /var/lib/swift 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

deb="$out_dir/ringsmith_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >&2
echo "$deb"
