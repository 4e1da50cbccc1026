#!/usr/bin/env bash
# Make rootfs.tar for the base image: a debootstrap minbase of Debian RELEASE
# from MIRROR with Debian's python3, trimmed the way the slim Debian images are
# (no docs, man pages or locales; apt lists dropped; no host file left behind).
# harness.images runs it as root, with the image's input hash covering this file.
#
#   make-rootfs.sh WORKDIR RELEASE MIRROR SOURCES_FILE     -> WORKDIR/rootfs.tar
#
# SOURCES_FILE (deb822, like the host's debian.sources) becomes the image's apt
# sources, so images built on it install from the same suites the host uses.
set -euo pipefail

workdir=$1 release=$2 mirror=$3 sources=$4
rootfs="$workdir/rootfs"
packages=python3,python3-venv,python-is-python3,ca-certificates

# debootstrap mounts /proc and /sys inside the target; never leave them behind.
cleanup() {
  { grep -o " $rootfs[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r point; do
    umount --lazy "$point" || true
  done
  rm -rf "$rootfs"
}
trap cleanup EXIT

rm -rf "$rootfs"
debootstrap --variant=minbase --include="$packages" "$release" "$rootfs" "$mirror"

echo "make-rootfs: trimming $rootfs"
# Apt: the host's suites (updates and security too), no recommends, no docs.
rm -f "$rootfs/etc/apt/sources.list"
install -m 0644 "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
cat > "$rootfs/etc/apt/apt.conf.d/90retention-stack" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/90retention-stack" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
# Packages' maintainer scripts must not start services during an image build.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

# What the dpkg rules above would have kept out, and what is the host's, not the image's.
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/log/* "$rootfs"/dev/* "$rootfs"/run/* "$rootfs"/tmp/* \
       "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"

echo "make-rootfs: packing $(du -sh "$rootfs" | cut -f1) into rootfs.tar"
tar --numeric-owner --xattrs -C "$rootfs" -cf "$workdir/rootfs.tar.partial" .
mv "$workdir/rootfs.tar.partial" "$workdir/rootfs.tar"
