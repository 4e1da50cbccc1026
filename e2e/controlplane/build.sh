#!/usr/bin/env bash
# Build binaries from Go modules into a cache outside the repository, keyed by
# the pinned versions, and skip what is already built.
#
#   build.sh          the control plane: etcd, kube-apiserver, controller manager,
#                     scheduler, kubectl, kwok, helm
#   build.sh node     the real node: kubelet, kube-proxy, CoreDNS, local-path-provisioner
#
# The last line printed is BIN_DIR=<path> of the group asked for.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${RETENTION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/retention-stack}

# Never let a module's go directive download a toolchain: fail loudly instead.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=mod"

log() { printf '[controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A binary counts as built only if it exists and was built with the recipe
# (the flags) asked for now; a changed recipe rebuilds it.
missing() {
  local recipe=$1; shift
  local out=()
  for name in "$@"; do
    if [ ! -x "$bin_dir/$name" ] || [ "$(cat "$bin_dir/.$name.recipe" 2>/dev/null)" != "$recipe" ]; then
      out+=("$name")
    fi
  done
  echo "${out[@]:-}"
}

stamp() {
  local recipe=$1; shift
  for name in "$@"; do printf '%s' "$recipe" > "$bin_dir/.$name.recipe"; done
}

# Builds the given commands of k8s.io/kubernetes (kube-apiserver, kubelet, ...).
build_kubernetes() {
  local v=${KUBERNETES_VERSION#v} major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  # The version variables upstream's hack/lib/version.sh sets; without them
  # /version reports v0.0.0-master and Helm's kubeVersion checks fail.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local want; want=$(missing "$ld" "$@")
  [ -n "$want" ] || { log "kubernetes $KUBERNETES_VERSION: cached"; return; }
  local pkgs=() name
  for name in $want; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  log "kubernetes $KUBERNETES_VERSION: building $want (several minutes when cold)"
  (cd "$here/kubernetes" && go build -ldflags "$ld" -o "$bin_dir/" "${pkgs[@]}")
  # shellcheck disable=SC2086
  stamp "$ld" $want
  log "kubernetes $KUBERNETES_VERSION: built"
}

build_etcd() {
  local ld="-s -w"
  [ -n "$(missing "$ld" etcd)" ] || { log "etcd $ETCD_VERSION: cached"; return; }
  log "etcd $ETCD_VERSION: building"
  (cd "$here/etcd" && go build -ldflags "$ld" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3)
  stamp "$ld" etcd
  log "etcd $ETCD_VERSION: built"
}

# kwok and helm carry no replace directives, so `go install pkg@version` works.
install_plain() {
  local name=$1 pkg=$2 version=$3 ld=${4:-"-s -w"}
  [ -n "$(missing "$ld" "$name")" ] || { log "$name $version: cached"; return; }
  log "$name $version: building"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" GOFLAGS=-trimpath go install -ldflags "$ld" "$pkg@$version"
  mv "$tmp/$name" "$bin_dir/$name"; rmdir "$tmp"
  stamp "$ld" "$name"
  log "$name $version: built"
}

build_controlplane() {
  build_etcd
  install_plain kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
  # What Helm's own Makefile sets: its version, and the Kubernetes version it
  # assumes when no cluster is reachable (helm template, helm lint).
  local k8s_minor=${KUBERNETES_VERSION#v1.} helm_ld pkg
  k8s_minor=${k8s_minor%%.*}
  helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    helm_ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  install_plain helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_ld"
  build_kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_node() {
  build_kubernetes kubelet kube-proxy
  # CoreDNS stamps its git commit the same way upstream's Makefile does; the
  # version itself is a constant of the module.
  install_plain coredns github.com/coredns/coredns "$COREDNS_VERSION" \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  install_plain local-path-provisioner github.com/rancher/local-path-provisioner \
    "$LOCAL_PATH_PROVISIONER_VERSION" \
    "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION"
}

# Sourced by a sibling script (build-gitops.sh) for the helpers above: build nothing.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

group=${1:-controlplane}
case "$group" in
  controlplane)
    bin_dir="$cache_root/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION" ;;
  node)
    bin_dir="$cache_root/bin/node-k8s-$KUBERNETES_VERSION-coredns-$COREDNS_VERSION-lpp-$LOCAL_PATH_PROVISIONER_VERSION" ;;
  *)
    echo "build.sh: unknown group '$group' (controlplane or node)" >&2; exit 2 ;;
esac
mkdir -p "$bin_dir"
# Two builds into one cache (two test runs at once, say) wait for each other
# instead of writing the same binaries together.
exec 9>"$bin_dir/.lock"
flock 9
"build_$group"
echo "BIN_DIR=$bin_dir"
