# Every routine task of retention-stack. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -p no:cacheprovider
RUN_DIR ?= $(CURDIR)/.run

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# uv lives beside the venv, not in it: `uv sync` makes the venv exactly the lock's
# chosen packages and would remove itself. Its version is pyproject's [tool.uv] pin;
# a new pin installs a new uv.
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
UV_DIR     := $(VENV)/.uv-$(UV_VERSION)
UV         := $(UV_DIR)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --target $(UV_DIR) uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	@$(UV) lock --check -q || { \
	  echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock" >&2; exit 1; }
	$(UV) sync -q --locked --python $(PY) --extra dev --extra bench
	touch $@

.PHONY: install
install: $(STAMP) ## Create .venv from uv.lock: the project (editable), both sides' and the dev dependencies.

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after a change of pyproject.toml's dependencies.
	$(UV) lock

.PHONY: example-requirements
example-requirements: | $(UV) ## Export examples/rq/requirements.txt (pinned, hashed) from uv.lock.
	$(UV) export -q --frozen --no-emit-project --no-header --extra example-rq -o examples/rq/requirements.txt

.PHONY: packages
packages: ## Install the Debian packages the tests run (redis, postgresql, pgbouncer, prometheus, ...) when missing.
	@bash e2e/harness/install-packages.sh

.PHONY: pgbouncer-prepared
pgbouncer-prepared: ## Build PgBouncer 1.24 (max_prepared_statements) from Debian's source package into the cache; last line is PGBOUNCER=<path>.
	@bash e2e/harness/build-pgbouncer.sh

.PHONY: tools
tools: ## Build the control-plane binaries into a cache outside the repo; last line is BIN_DIR=<path>.
	@bash e2e/controlplane/build.sh

.PHONY: gitops-tools
gitops-tools: ## Build the kstatus and Argo CD health checkers, helm-docs and ct into the cache; last line is BIN_DIR=<path>.
	@bash e2e/controlplane/build-gitops.sh

.PHONY: gitops-table
gitops-table: install packages tools gitops-tools ## Record every status case with the real operator; rewrite docs/gitops.md's table and its fixtures.
	@$(PY) -m harness gitops-table

.PHONY: cluster-up
cluster-up: install packages tools ## Start the local cluster: control plane, KWOK nodes, the real node (KWOK_ONLY=1: none); last line KUBECONFIG=<path>.
	@$(PY) -m harness cluster-up --run-dir $(RUN_DIR)/cluster $(if $(KWOK_ONLY),--kwok-only)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and the real node; leaves no process, mount, namespace or veth.
	@if [ -x $(PY) ]; then $(PY) -m harness cluster-down --run-dir $(RUN_DIR)/cluster; fi

.PHONY: crds
crds: install ## Regenerate crds/ and the chart's CRD from the pydantic models.
	$(PY) -m retention_operator.crdgen --write
	$(PY) charts/retention-operator/hack/sync_crds.py --write

.PHONY: chart-crds
chart-crds: install ## Copy crds/retention.dev_retentionstacks.yaml into the chart's templates.
	$(PY) charts/retention-operator/hack/sync_crds.py --write

.PHONY: chart-lint
chart-lint: install tools gitops-tools ## helm lint and ct lint the chart, check its CRD copy and that its README is current.
	@helm=$$(bash e2e/controlplane/build.sh | tail -1 | cut -d= -f2)/helm; \
	for v in "" ci/full-values.yaml ci/namespaced-values.yaml; do \
	  $$helm lint --strict --kube-version 1.34.0 charts/retention-operator $${v:+-f charts/retention-operator/$$v} || exit 1; \
	done; \
	gitops=$$(bash e2e/controlplane/build-gitops.sh | tail -1 | cut -d= -f2); \
	PATH=$$(dirname $$helm):$(CURDIR)/$(VENV)/bin:$$PATH $$gitops/ct lint --config charts/ct.yaml \
	  --chart-yaml-schema $$gitops/ct-etc/chart_schema.yaml --lint-conf $$gitops/ct-etc/lintconf.yaml; \
	$$gitops/helm-docs --chart-search-root charts/retention-operator --sort-values-order file --dry-run \
	  | diff -u charts/retention-operator/README.md - || { echo "README.md is out of date: make chart-docs"; exit 1; }
	$(PY) charts/retention-operator/hack/sync_crds.py --check

.PHONY: chart-docs
chart-docs: gitops-tools ## Regenerate the chart's README.md from README.md.gotmpl, Chart.yaml and values.yaml (helm-docs).
	@gitops=$$(bash e2e/controlplane/build-gitops.sh | tail -1 | cut -d= -f2); \
	$$gitops/helm-docs --chart-search-root charts/retention-operator --sort-values-order file

.PHONY: chart-test
chart-test: install tools gitops-tools ## Chart, RBAC, alert, dashboard, Argo CD health and kstatus tests (no cluster).
	$(PYTEST) -m "not e2e" -q e2e/tests/chart

.PHONY: lint
lint: install ## ruff, and the import-linter layering contracts.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

.PHONY: types
types: install ## mypy --strict on every package.
	$(VENV)/bin/mypy

.PHONY: unit
unit: install ## Pure unit tests (no servers).
	$(PYTEST) -m "not services and not e2e and not node" -q

.PHONY: test-services
test-services: install packages ## Tests against real Redis, PostgreSQL, PgBouncer and Prometheus.
	$(PYTEST) -m "services and not e2e and not node" -q

.PHONY: e2e
e2e: install packages tools gitops-tools ## End-to-end tests on the local control plane.
	$(PYTEST) -m "e2e and not node" -q

.PHONY: monitoring-test
monitoring-test: install packages tools gitops-tools images ## Build Prometheus Operator (about 13 min cold) and test the stacks' PodMonitors with it, on the real node.
	@bash e2e/controlplane/build-gitops.sh prometheus-operator >/dev/null
	$(PYTEST) -m prometheus_operator -q

.PHONY: images
images: install packages ## Build the images (base, pause, operator, workloads, redis, pgbouncer, coredns, local-path-provisioner) with buildah, cached by their inputs; last line IMAGES=<json>.
	@$(PY) -m harness images

.PHONY: example-images
example-images: install packages ## Build the examples' images (Hono + BullMQ, RQ) with buildah on the project's base; last line is IMAGES=<json>.
	@$(PY) -m harness images --only example-bullmq,example-rq

.PHONY: test-node
test-node: install packages tools images ## Tests on containerd with the built images, and on the real node.
	$(PYTEST) -m "node and not autoscalers and not prometheus_operator and not quarantine" -q

.PHONY: test-quarantine
test-quarantine: install packages tools images ## The node tests out of make test because they failed intermittently (see each one's reason).
	$(PYTEST) -m "node and quarantine" -q

.PHONY: autoscalers-test
autoscalers-test: install packages tools images ## Build metrics-server and KEDA (tens of minutes cold each) and test them on the real node.
	@bash e2e/controlplane/build-autoscalers.sh metrics-server >/dev/null
	@bash e2e/controlplane/build-autoscalers.sh keda >/dev/null
	$(PYTEST) -m autoscalers -q

.PHONY: test
test: install packages tools gitops-tools lint types unit test-services e2e images test-node ## Everything: install, lint, types, unit, services, e2e, images, node.

.PHONY: demo
demo: install packages tools images ## The main job: the cluster with its real node, the operator from the chart, a stack, Ready (EXAMPLE=bullmq: the Hono + BullMQ example as its API and workers).
	@$(PY) -m harness demo-up --run-dir $(RUN_DIR) --example "$(EXAMPLE)"

.PHONY: demo-load
demo-load: ## POST JOBS jobs (default 2000) to the demo's API and watch the workers scale.
	@$(PY) -m harness demo-load --run-dir $(RUN_DIR) --jobs $(or $(JOBS),2000)

.PHONY: demo-down
demo-down: ## Stop the demo: PostgreSQL, the real node and the control plane; leaves nothing behind.
	@if [ -x $(PY) ]; then $(PY) -m harness demo-down --run-dir $(RUN_DIR); fi

.PHONY: bench-autoscaling
bench-autoscaling: install ## Autoscaling simulator: retention vs the HPA and KEDA baselines on the public traces; the forecast's with/without table on the multi-day traces.
	@for t in bench/autoscaling/traces/*.csv; do echo "== $$t"; $(PY) -m bench.autoscaling --trace $$t --policy all --json; done
	@echo "== bench/autoscaling/traces/weeks: retention with and without the forecast"
	@$(PY) -m bench.autoscaling.forecast_table

.PHONY: bench-forecast
bench-forecast: install ## Regenerate the forecast's table in bench/autoscaling/README.md (ours with and without it on the multi-day traces; minutes).
	@$(PY) -m bench.autoscaling.forecast_table --write

.PHONY: bench-table
bench-table: install ## Regenerate the tables of bench/autoscaling/README.md: every trace, baseline and plant (minutes).
	@$(PY) -m bench.autoscaling.table --write

.PHONY: bench-closedloop
CLOSEDLOOP_TRACE ?= bench/autoscaling/traces/step.csv
CLOSEDLOOP_COMPRESS ?= 4
bench-closedloop: install packages tools images ## Closed loop on real pods: retention vs real KEDA and the real HPA on a trace (about an hour; builds KEDA and metrics-server cold).
	@bash e2e/controlplane/build-autoscalers.sh metrics-server >/dev/null
	@bash e2e/controlplane/build-autoscalers.sh keda >/dev/null
	@$(PY) -m bench.closedloop --trace $(CLOSEDLOOP_TRACE) --compress $(CLOSEDLOOP_COMPRESS)

.PHONY: bench-tick
bench-tick: install packages ## The autoscaling tick's CPU at rest over 300 and 1,000 stacks on a real Redis, this checkout beside main, as a ratio (minutes).
	@$(PY) -m bench.tick --stacks 300 1000 --baseline-rev main --rounds 2 --markdown

.PHONY: bench-reshard
bench-reshard: install packages ## Resharding benchmark: a third of the slots with 100,000 keys, ensure_cluster vs redis-cli rebalance.
	@$(PY) -m bench.reshard --keys 100000 --json

.PHONY: bench-workloads
bench-workloads: install packages ## Workloads benchmark: API req/s and p95, worker jobs/s (real Redis, PostgreSQL, PgBouncer).
	@$(PY) -m bench.workloads --json

.PHONY: clean
clean: ## Remove the venv and local run state (the binary cache stays).
	rm -rf $(VENV) $(RUN_DIR) .mypy_cache .ruff_cache
