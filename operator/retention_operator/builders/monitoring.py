"""The PodMonitor that has Prometheus Operator scrape a stack's pods.

One PodMonitor per stack selects every pod of the stack (its stack label) and
has one endpoint per named metrics port: Prometheus Operator keeps, for each
endpoint, only the containers with a port of that name, so a pod without the
port yields no target. Adding an exporter sidecar (Redis, PgBouncer) is one
more name in :data:`PORTS`.

Labels come from Kubernetes, not from the scraped pod (``honorLabels``
false): Prometheus Operator attaches ``namespace``, ``pod`` and ``container``,
and the relabelling below adds ``stack`` and ``component`` from the pod's
labels, so the autoscaler's ``by (namespace, stack)`` query groups every
stack's series whatever the application exports, and no pod can speak for
another stack. The API's own ``namespace`` and ``stack`` labels (the same
values) are kept by Prometheus as ``exported_namespace`` and
``exported_stack``.
"""

from __future__ import annotations

import re
from typing import Any

import retention_contract as contract
from retention_operator import names
from retention_operator.builders import labels, naming
from retention_operator.model import RetentionStack

METRICS_PATH = "/metrics"
# The named container ports that serve /metrics: the API's, the workers', the exporters'.
PORTS: tuple[str, ...] = (
    naming.API_HTTP_PORT_NAME,
    naming.WORKERS_METRICS_PORT_NAME,
    naming.REDIS_EXPORTER_PORT_NAME,
    naming.PGBOUNCER_EXPORTER_PORT_NAME,
)


def _meta_label(label: str) -> str:
    """The discovery label Prometheus gives a pod label (non-alphanumerics become _)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", label)


def _endpoint(port: str, *, interval: str | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "port": port,
        "path": METRICS_PATH,
        "honorLabels": False,
        "relabelings": [
            {
                "action": "replace",
                "sourceLabels": [_meta_label(names.LABEL_STACK)],
                "targetLabel": contract.LABEL_STACK,
            },
            {
                "action": "replace",
                "sourceLabels": [_meta_label(names.LABEL_COMPONENT)],
                "targetLabel": "component",
            },
        ],
    }
    if interval:
        endpoint["interval"] = interval
    return endpoint


def build_pod_monitor(stack: RetentionStack) -> dict[str, Any]:
    """Return the stack's PodMonitor (monitoring.coreos.com/v1), with the spec's extra labels."""
    spec = stack.spec.monitoring.pod_monitor
    meta = labels.object_meta(stack, naming.pod_monitor(stack.name), names.COMPONENT_MONITORING)
    meta["labels"] = {**spec.labels, **meta["labels"]}
    return {
        "apiVersion": names.MONITORING_API_VERSION,
        "kind": names.KIND_POD_MONITOR,
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {names.LABEL_STACK: stack.name}},
            "podMetricsEndpoints": [_endpoint(port, interval=spec.interval) for port in PORTS],
        },
    }
