#!/usr/bin/env bash
# Install the Debian packages whose servers the tests start, when missing.
# The services run as subprocesses of the tests, never as system services, so
# any service the package starts on install is stopped again.
set -euo pipefail

# Servers and exporters the services and e2e tiers start (with the Python libraries
# of PgBouncer's exporter), then what the real node and the image builds need: containerd and runc (the runtime), the CNI plugins, iptables and conntrack
# (kube-proxy), buildah and debootstrap (images without a Docker engine), and a
# static libc for the pause image; Node.js for the BullMQ example and its tests (any
# nodejs package: Debian's 18 runs them, as does NodeSource's 20, which bundles npm).
want=(redis-server redis-tools prometheus-redis-exporter postgresql pgbouncer prometheus openssl
      python3-venv python3-psycopg2 python3-prometheus-client python3-yaml python3-pythonjsonlogger
      containerd runc containernetworking-plugins iptables conntrack buildah debootstrap
      libc6-dev gcc nodejs)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "packages: all present (${want[*]})"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
# policy-rc.d keeps the packages' own services from starting; the tests start theirs.
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
$sudo chmod +x /usr/sbin/policy-rc.d
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "packages: installed ${missing[*]}"
