#!/usr/bin/env bash
# Build the autoscalers a careful user would install instead of the operator's,
# into the same cache as the control plane and with build.sh's helpers:
#   metrics-server   resource metrics (metrics.k8s.io) for the HPA's CPU target,
#                    with upstream's RBAC and APIService manifests (manifests/)
#   keda             KEDA's operator (keda) and metrics API server (keda-adapter,
#                    external.metrics.k8s.io), with its CRDs (crds/) and
#                    upstream's RBAC and APIService (manifests/), from the
#                    wrapper module keda/
#
#   build-autoscalers.sh [metrics-server|keda]
#
# Nothing in `make test` builds them: `make autoscalers-test` and `make
# bench-closedloop` do (under `nice -n 19` on two shared cores at load 12-20:
# metrics-server 24 minutes cold, KEDA 34 minutes with part of its
# dependencies already in the Go build cache). Each tool has a folder and a
# lock of its own, keyed by its version. The last line printed is BIN_DIR=<path>.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=build.sh
source "$here/build.sh"   # helpers only: build.sh returns before building when sourced
# shellcheck source=autoscalers-versions.env
source "$here/autoscalers-versions.env"

# What upstream's Makefile stamps (client-go's version variables), so that
# `metrics-server --version` and its User-Agent name the release. Its RBAC
# and APIService manifests come from the same module (manifests/base).
build_metrics_server() {
  local pkg=k8s.io/client-go/pkg/version
  install_plain metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "$METRICS_SERVER_VERSION" \
    "-s -w -X $pkg.gitVersion=$METRICS_SERVER_VERSION -X $pkg.gitCommit=unknown -X $pkg.buildDate=1970-01-01T00:00:00Z"
  local mod dir="$bin_dir/manifests"
  mod=$(go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$dir"
  cp "$mod/manifests/base/rbac.yaml" "$mod/manifests/base/apiservice.yaml" "$dir/"
  chmod -R u+w "$dir"
}

# KEDA's operator and adapter from the wrapper module (its go.mod repeats the
# replace KEDA's own carries, which `go install ...@version` refuses), with the
# version variables KEDA's Makefile sets. The recipe carries a hash of the
# wrapper's go.mod and go.sum.
build_keda() {
  local ver=github.com/kedacore/keda/v2/version
  local ld="-s -w -X $ver.Version=${KEDA_VERSION#v} -X $ver.GitCommit=$KEDA_VERSION" sum
  sum=$(cat "$here/keda/go.mod" "$here/keda/go.sum" | sha256sum | cut -c1-16)
  if [ -n "$(missing "$ld mod=$sum" keda keda-adapter)" ]; then
    log "keda $KEDA_VERSION: building keda, keda-adapter"
    (cd "$here/keda" &&
      go build -ldflags "$ld" -o "$bin_dir/keda" github.com/kedacore/keda/v2/cmd/operator &&
      go build -ldflags "$ld" -o "$bin_dir/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter)
    stamp "$ld mod=$sum" keda keda-adapter
    log "keda $KEDA_VERSION: built"
  else
    log "keda $KEDA_VERSION: cached"
  fi
  # The CRDs, and upstream's manifests the host processes run under: the
  # namespace, the ServiceAccount and its RBAC (operator and metrics API
  # server) and the APIService, each file named after its folder.
  local mod dir="$bin_dir/crds" f
  mod=$(cd "$here/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)
  mkdir -p "$dir" "$bin_dir/manifests"
  cp "$mod"/config/crd/bases/*.yaml "$dir/"
  for f in general/namespace.yaml service_account/service_account.yaml rbac/role.yaml \
    rbac/role_binding.yaml metrics-server/role.yaml metrics-server/role_binding.yaml \
    metrics-server/api_service.yaml; do
    cp "$mod/config/$f" "$bin_dir/manifests/${f//\//-}"
  done
  chmod -R u+w "$dir" "$bin_dir/manifests"
}

tool=${1:-metrics-server}
case "$tool" in
  metrics-server) bin_dir="$cache_root/bin/metrics-server-$METRICS_SERVER_VERSION" ;;
  keda)
    # The wrapper's go.mod is KEDA's one pin.
    KEDA_VERSION=$(cd "$here/keda" && go list -m -f '{{.Version}}' github.com/kedacore/keda/v2)
    bin_dir="$cache_root/bin/keda-$KEDA_VERSION" ;;
  *) echo "build-autoscalers.sh: unknown tool '$tool' (metrics-server or keda)" >&2; exit 2 ;;
esac
mkdir -p "$bin_dir"
# Two builds into one folder (two test runs at once) wait for each other.
exec 9>"$bin_dir/.lock"
flock 9
"build_${tool//-/_}"
echo "BIN_DIR=$bin_dir"
