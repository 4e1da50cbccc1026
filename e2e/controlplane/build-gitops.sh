#!/usr/bin/env bash
# Build the GitOps and monitoring tools the chart and status tests run, into
# the same cache as the control plane and with build.sh's helpers:
#   kstatus, argocd-health  the project's checkers (checkers/): the kstatus
#                           library Flux runs, Argo CD's gopher-lua health check
#   helm-docs               the chart README from values.yaml
#   ct                      chart-testing's `ct lint`, with its etc/ schema files
# and, only when asked (`build-gitops.sh prometheus-operator`), Prometheus
# Operator and its CRDs. The last line printed is BIN_DIR=<path>.
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
# MODULE_DIR (under e2e/controlplane) into $bin_dir/NAME, unless cached.
build_wrapped() {
  local name=$1 module=$2 pkg=$3 ld=$4
  [ -n "$(missing "$ld" "$name")" ] || { log "$name: cached"; return; }
  log "$name: building (minutes when cold)"
  (cd "$here/$module" && go build -ldflags "$ld" -o "$bin_dir/$name" "$pkg")
  stamp "$ld" "$name"
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

# Prometheus Operator and its CRDs, from the same module version, in a folder
# of their own (only `make monitoring-test` asks for them).
build_prometheus_operator() {
  local saved=$bin_dir pkg=github.com/prometheus/common/version
  bin_dir="$saved/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  mkdir -p "$bin_dir/crds"
  local ld="-s -w -X $pkg.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X $pkg.Revision=unknown"
  ld+=" -X $pkg.Branch=unknown -X $pkg.BuildUser=retention-stack -X $pkg.BuildDate=19700101-00:00:00"
  build_wrapped prometheus-operator prometheus-operator \
    github.com/prometheus-operator/prometheus-operator/cmd/operator "$ld"
  local mod; mod=$(cd "$here/prometheus-operator" && go list -m -f '{{.Dir}}' \
    github.com/prometheus-operator/prometheus-operator)
  cp "$mod"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$bin_dir/crds/"
  chmod -R u+w "$bin_dir/crds"
  bin_dir=$saved
}

build_checkers
install_plain helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION" \
  "-s -w -X main.version=${HELM_DOCS_VERSION#v}"
build_chart_testing
for extra in "$@"; do
  case $extra in
    prometheus-operator) build_prometheus_operator ;;
    *) echo "build-gitops.sh: unknown tool $extra (known: prometheus-operator)" >&2; exit 2 ;;
  esac
done
echo "BIN_DIR=$bin_dir"
