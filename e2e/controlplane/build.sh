#!/usr/bin/env bash
# Build the local control plane's binaries from Go modules into a cache outside
# the repository, keyed by the pinned versions, and skip what is already built.
# The last line printed is BIN_DIR=<path>.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${RETENTION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/retention-stack}
bin_dir="$cache_root/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin_dir"

# Never let a module's go directive download a toolchain: fail loudly instead.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=mod"

log() { printf '[controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing() {
  local out=()
  for name in "$@"; do [ -x "$bin_dir/$name" ] || out+=("$name"); done
  echo "${out[@]:-}"
}

build_kubernetes() {
  local want; want=$(missing kube-apiserver kube-controller-manager kube-scheduler kubectl)
  [ -n "$want" ] || { log "kubernetes $KUBERNETES_VERSION: cached"; return; }
  local v=${KUBERNETES_VERSION#v} major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  # The version variables upstream's hack/lib/version.sh sets; without them
  # /version reports v0.0.0-master and Helm's kubeVersion checks fail.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local pkgs=() name
  for name in $want; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  log "kubernetes $KUBERNETES_VERSION: building $want (several minutes when cold)"
  (cd "$here/kubernetes" && go build -ldflags "$ld" -o "$bin_dir/" "${pkgs[@]}")
  log "kubernetes $KUBERNETES_VERSION: built"
}

build_etcd() {
  [ -n "$(missing etcd)" ] || { log "etcd $ETCD_VERSION: cached"; return; }
  log "etcd $ETCD_VERSION: building"
  (cd "$here/etcd" && go build -ldflags "-s -w" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3)
  log "etcd $ETCD_VERSION: built"
}

# kwok and helm carry no replace directives, so `go install pkg@version` works.
install_plain() {
  local name=$1 pkg=$2 version=$3
  [ -n "$(missing "$name")" ] || { log "$name $version: cached"; return; }
  log "$name $version: building"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" GOFLAGS=-trimpath go install -ldflags "-s -w" "$pkg@$version"
  mv "$tmp/$name" "$bin_dir/$name"; rmdir "$tmp"
  log "$name $version: built"
}

build_etcd
install_plain kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
install_plain helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
build_kubernetes
echo "BIN_DIR=$bin_dir"
