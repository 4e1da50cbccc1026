#!/usr/bin/env bash
# Build the GitOps and monitoring tools the chart and status tests run, into
# the same cache as the control plane and with build.sh's helpers:
#   kstatus, argocd-health  the project's checkers (checkers/): the kstatus
#                           library Flux runs, Argo CD's gopher-lua health check
#   helm-docs               the chart README from values.yaml
#   ct                      chart-testing's `ct lint`, with its etc/ schema files
#   prometheus-operator-<v>/crds  Prometheus Operator's CRDs (downloaded, not built)
# and, only when asked (`build-gitops.sh prometheus-operator`), Prometheus
# Operator itself. The last line printed is BIN_DIR=<path>.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=build.sh
source "$here/build.sh"   # helpers only: build.sh returns before building when sourced
# shellcheck source=gitops-versions.env
source "$here/gitops-versions.env"

# The version a wrapper module requires: its go.mod is the one pin.
wrapped_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }
CHART_TESTING_VERSION=$(wrapped_version chart-testing github.com/helm/chart-testing/v3)
PROMETHEUS_OPERATOR_VERSION=$(wrapped_version prometheus-operator \
  github.com/prometheus-operator/prometheus-operator)

bin_dir="$cache_root/bin/gitops-helm-docs-$HELM_DOCS_VERSION-ct-$CHART_TESTING_VERSION"
mkdir -p "$bin_dir"

# build_wrapped NAME MODULE_DIR PKG LDFLAGS: build PKG inside the wrapper module
# MODULE_DIR (under e2e/controlplane) into $bin_dir/NAME, unless cached. The
# recipe carries a hash of the wrapper's go.mod and go.sum: a changed
# dependency graph rebuilds.
build_wrapped() {
  local name=$1 module=$2 pkg=$3 ld=$4 sum
  sum=$(cat "$here/$module/go.mod" "$here/$module/go.sum" | sha256sum | cut -c1-16)
  [ -n "$(missing "$ld mod=$sum" "$name")" ] || { log "$name: cached"; return; }
  log "$name: building (minutes when cold)"
  (cd "$here/$module" && go build -ldflags "$ld" -o "$bin_dir/$name" "$pkg")
  stamp "$ld mod=$sum" "$name"
  log "$name: built"
}

# The checkers are this repository's source: the recipe carries a hash of it,
# so any edit rebuilds them.
build_checkers() {
  local src="$here/checkers" sum
  sum=$(cd "$src" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  local ld="-s -w" recipe="-s -w src=$sum"
  [ -n "$(missing "$recipe" kstatus argocd-health)" ] || { log "checkers $sum: cached"; return; }
  log "checkers $sum: building kstatus, argocd-health"
  (cd "$src" && go build -ldflags "$ld" -o "$bin_dir/" ./kstatus ./argocd-health)
  stamp "$recipe" kstatus argocd-health
  log "checkers $sum: built"
}

# ct reads its chart schema and yamllint rules from files; they ship in the
# module's etc/ folder and are copied beside the binary.
build_chart_testing() {
  local ld="-s -w -X github.com/helm/chart-testing/v3/ct/cmd.Version=$CHART_TESTING_VERSION"
  build_wrapped ct chart-testing github.com/helm/chart-testing/v3/ct "$ld"
  local mod; mod=$(cd "$here/chart-testing" && go list -m -f '{{.Dir}}' github.com/helm/chart-testing/v3)
  mkdir -p "$bin_dir/ct-etc"
  cp "$mod/etc/chart_schema.yaml" "$mod/etc/lintconf.yaml" "$bin_dir/ct-etc/"
  chmod -R u+w "$bin_dir/ct-etc"
}

# Prometheus Operator's CRDs, from its module (a download, no build): the
# e2e tests install them to see a stack get its PodMonitor.
copy_prometheus_operator_crds() {
  local dir="$bin_dir/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/crds" mod
  mod=$(cd "$here/prometheus-operator" && go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$dir"
  cp "$mod"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$dir/"
  chmod -R u+w "$dir"
}

# prometheus/common's version variables, as both projects' release builds set them.
version_ld() {
  local pkg=github.com/prometheus/common/version
  echo "-s -w -X $pkg.Version=$1 -X $pkg.Revision=unknown -X $pkg.Branch=unknown" \
    "-X $pkg.BuildUser=retention-stack -X $pkg.BuildDate=19700101-00:00:00"
}

# Prometheus Operator itself, its config reloader (what a Prometheus pod runs
# on the configuration before Prometheus reads it), and the Prometheus its
# module requires (a wrapper module of its own), with Kubernetes service
# discovery, which Debian's prometheus package leaves out; in the same folder.
# Only `make monitoring-test` asks for them.
build_prometheus_operator() {
  local saved=$bin_dir
  bin_dir="$saved/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  local cmd
  for cmd in operator prometheus-config-reloader; do
    build_wrapped "${cmd/#operator/prometheus-operator}" prometheus-operator \
      "github.com/prometheus-operator/prometheus-operator/cmd/$cmd" \
      "$(version_ld "${PROMETHEUS_OPERATOR_VERSION#v}")"
  done
  local mod; mod=$(cd "$here/prometheus" && go list -m -f '{{.Dir}}' \
    github.com/prometheus/prometheus)
  # Without the builtinassets tag the web UI is not embedded; the HTTP API
  # the tests use is all there.
  build_wrapped prometheus prometheus github.com/prometheus/prometheus/cmd/prometheus \
    "$(version_ld "$(cat "$mod/VERSION")")"
  bin_dir=$saved
}

build_checkers
install_plain helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION" \
  "-s -w -X main.version=${HELM_DOCS_VERSION#v}"
build_chart_testing
copy_prometheus_operator_crds
for extra in "$@"; do
  case $extra in
    prometheus-operator) build_prometheus_operator ;;
    *) echo "build-gitops.sh: unknown tool $extra (known: prometheus-operator)" >&2; exit 2 ;;
  esac
done
echo "BIN_DIR=$bin_dir"
