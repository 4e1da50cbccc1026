"""The operator's own Prometheus metrics and its per-stack JSON logging.

Metric names follow controller-runtime's (``controller_runtime_reconcile_*``)
so that dashboards built for Go operators fit; the rest carry the
``retention_`` prefix. Logging goes through kopf's JSON formatter: every line
about a stack carries ``object`` with its namespace and name.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from retention_operator import names

CONTROLLER = "retentionstack"

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Reconciliations per controller and result (success, error, requeue).",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Reconciliations that ended in an error, per controller.",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Time of one reconciliation, per controller.",
    ["controller"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
KUBE_REQUESTS = Counter(
    "retention_operator_kube_requests_total",
    "Requests the operator sent to the API server, by verb, kind and HTTP code.",
    ["verb", "kind", "code"],
)
KUBE_IN_FLIGHT = Gauge(
    "retention_operator_kube_requests_in_flight",
    "Requests to the API server on the wire now.",
)
KUBE_WAITING = Gauge(
    "retention_operator_kube_requests_waiting",
    "Requests queued for a slot of the kube layer's limiter.",
)
KUBE_LIMIT = Gauge(
    "retention_operator_kube_requests_limit",
    "Requests the kube layer lets in flight at once now (halved when the API server pushes back).",
)
DRIFT_CORRECTED = Counter(
    "retention_operator_drift_corrected_total",
    "Children put back after a change outside the operator (an edit or a deletion).",
)
WORK_RUNNING = Gauge(
    "retention_operator_work_running",
    "Reconciles and settles running now (bounded by RETENTION_MAX_CONCURRENT_RECONCILES).",
)
WORK_WAITING = Gauge(
    "retention_operator_work_waiting",
    "Reconciles and settles waiting for a slot.",
)
STACK_CONDITION = Gauge(
    "retention_stack_condition",
    "1 when the stack's condition of this type is True, else 0.",
    ["namespace", "stack", "type"],
)
STACK_REPLICAS = Gauge(
    "retention_stack_replicas",
    "Desired replicas of a stack's component as last decided or observed.",
    ["namespace", "stack", "component"],
)
AUTOSCALER_DECISIONS = Counter(
    "retention_autoscaler_decisions_total",
    "Autoscaling decisions by component and direction (up, down, none).",
    ["component", "direction"],
)
AUTOSCALER_TICK = Histogram(
    "retention_autoscaler_tick_duration_seconds",
    "Wall time of one autoscaling tick over every stack.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
AUTOSCALER_QUERY_ERRORS = Counter(
    "retention_autoscaler_query_errors_total",
    "Failed signal queries by source (prometheus, redis, prometheus-history).",
    ["source"],
)
AUTOSCALER_QUERIES = Counter(
    "retention_autoscaler_queries_total",
    "Signal round trips sent by source: a tick's PromQL queries (prometheus), pipelines "
    "(redis), the forecast's history range queries (prometheus-history).",
    ["source"],
)
READ_REPLICA_LAG = Gauge(
    "retention_operator_read_replica_lag_seconds",
    "Replication lag of a read replica (lower bound, from WAL positions) at the last check.",
    ["namespace", "stack", "replica"],
)
READ_REPLICA_IN_POOL = Gauge(
    "retention_operator_read_replica_in_pool",
    "1 while a read replica serves the stack's reads, 0 while it is out of the read pool.",
    ["namespace", "stack", "replica"],
)
STACK_BACKLOG = Gauge(
    "retention_stack_backlog",
    "Queue backlog (consumer-group lag plus pending) of a stack at the last tick.",
    ["namespace", "stack"],
)
STACK_DEAD_LETTERS = Gauge(
    "retention_stack_dead_letters",
    "Entries in the dead-letter stream of a stack's Redis Stream queue at the last tick.",
    ["namespace", "stack"],
)
STACK_API_P95 = Gauge(
    "retention_stack_api_p95_seconds",
    "API p95 latency of a stack read from Prometheus at the last tick.",
    ["namespace", "stack"],
)


def stack_ref(namespace: str, name: str) -> dict[str, str]:
    """The object reference kopf's JSON formatter prints under ``object``."""
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "namespace": namespace,
        "name": name,
    }


def stack_logger(logger: logging.Logger, namespace: str, name: str) -> logging.LoggerAdapter[Any]:
    """Return ``logger`` wrapped so every line names the stack (and never becomes an Event)."""
    return logging.LoggerAdapter(logger, {"k8s_ref": stack_ref(namespace, name), "k8s_skip": True})


def forget_stack(namespace: str, name: str) -> None:
    """Drop a deleted stack's labelled series so /metrics does not grow forever."""
    with contextlib.suppress(KeyError):
        STACK_BACKLOG.remove(namespace, name)
    with contextlib.suppress(KeyError):
        STACK_API_P95.remove(namespace, name)
    with contextlib.suppress(KeyError):
        STACK_DEAD_LETTERS.remove(namespace, name)
    for condition in (names.CONDITION_READY, names.CONDITION_RECONCILING, names.CONDITION_STALLED):
        with contextlib.suppress(KeyError):
            STACK_CONDITION.remove(namespace, name, condition)
    for component in (names.COMPONENT_API, names.COMPONENT_WORKERS):
        with contextlib.suppress(KeyError):
            STACK_REPLICAS.remove(namespace, name, component)
