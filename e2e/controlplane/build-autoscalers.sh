#!/usr/bin/env bash
# Build the autoscalers a careful user would install instead of the operator's,
# into the same cache as the control plane and with build.sh's helpers:
#   metrics-server   resource metrics (metrics.k8s.io) for the HPA's CPU target,
#                    with upstream's RBAC and APIService manifests (manifests/)
#
#   build-autoscalers.sh [metrics-server]
#
# Nothing in `make test` builds it: `make autoscalers-test` does (24 minutes
# cold under `nice -n 19` on two shared cores at load 12). Each tool has a
# folder and a lock of its own, keyed by its version. The last line printed is
# BIN_DIR=<path>.
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

tool=${1:-metrics-server}
case "$tool" in
  metrics-server) bin_dir="$cache_root/bin/metrics-server-$METRICS_SERVER_VERSION" ;;
  *) echo "build-autoscalers.sh: unknown tool '$tool' (metrics-server)" >&2; exit 2 ;;
esac
mkdir -p "$bin_dir"
# Two builds into one folder (two test runs at once) wait for each other.
exec 9>"$bin_dir/.lock"
flock 9
"build_${tool//-/_}"
echo "BIN_DIR=$bin_dir"
