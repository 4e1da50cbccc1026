#!/usr/bin/env bash
# Build a PgBouncer that has max_prepared_statements (>= 1.21) from Debian's source package.
#
# Debian bookworm ships PgBouncer 1.18 and bookworm-backports has none, so the
# source comes from Debian trixie's source package (signed and checked by apt
# through a private source list; the system's apt configuration is not touched),
# built against bookworm's libevent and OpenSSL. The binary is cached by version
# in ~/.cache/retention-stack/pgbouncer-<version>; later runs reuse it.
# Last line of output: PGBOUNCER=<path of the binary>.
set -euo pipefail

version=1.24.1
debian_version=1.24.1-1+deb13u2
cache=${RETENTION_CACHE_DIR:-$HOME/.cache/retention-stack}/pgbouncer-$version
bin=$cache/bin/pgbouncer
if [ -x "$bin" ]; then
  echo "PGBOUNCER=$bin"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
need=()
for pkg in libevent-dev libssl-dev pkg-config make gcc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "pgbouncer build: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_dir=$work/apt
mkdir -p "$apt_dir/lists/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Debug::NoDropPrivs=true")
apt-get "${apt_opts[@]}" update -q >/dev/null
(cd "$work" && { apt-get "${apt_opts[@]}" source --download-only "pgbouncer=$debian_version" >/dev/null 2>&1 \
  || apt-get "${apt_opts[@]}" source --download-only pgbouncer >/dev/null; })
orig=$(ls "$work"/pgbouncer_*.orig.tar.gz)
tar -xzf "$orig" -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'pgbouncer-*' | head -1)
echo "pgbouncer build: $(basename "$orig") into $cache" >&2
(cd "$src" && ./configure --prefix="$cache" --without-cares --without-pam --without-systemd >/dev/null \
  && make -j"$(nproc)" pgbouncer >/dev/null)
mkdir -p "$cache/bin"
install -m 0755 "$src/pgbouncer" "$bin"
"$bin" --version >&2
echo "PGBOUNCER=$bin"
