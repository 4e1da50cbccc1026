"""The queue workers: a Deployment of the workloads image's consumer."""

from __future__ import annotations

from typing import Any

import retention_contract as contract
from retention_operator import names
from retention_operator.builders import env, labels, naming, pods, security
from retention_operator.model import RetentionStack

METRICS_PATH = "/metrics"
# A worker scaled in finishes the jobs it holds (average < 5 s) or hands them
# back; this leaves room for the slow tail.
TERMINATION_GRACE_SECONDS = 60


def _operator_env(stack: RetentionStack) -> list[dict[str, Any]]:
    workers = stack.spec.workers
    out = [
        *env.connection_env(stack),
        {"name": contract.ENV_METRICS_PORT, "value": str(workers.metrics_port)},
    ]
    if workers.concurrency is not None:
        out.append({"name": contract.ENV_WORKER_CONCURRENCY, "value": str(workers.concurrency)})
    return out


def _container(stack: RetentionStack) -> dict[str, Any]:
    workers = stack.spec.workers
    return {
        "name": names.COMPONENT_WORKERS,
        "image": workers.image or stack.spec.api.image,
        "command": list(workers.command),
        "ports": [
            {
                "name": naming.WORKERS_METRICS_PORT_NAME,
                "containerPort": workers.metrics_port,
                "protocol": "TCP",
            }
        ],
        "env": env.merge_user_env(_operator_env(stack), workers.env),
        "resources": pods.resources(workers.resources),
        "livenessProbe": pods.tcp_probe(naming.WORKERS_METRICS_PORT_NAME, period=15),
        "startupProbe": pods.startup_probe(naming.WORKERS_METRICS_PORT_NAME),
        "securityContext": security.container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, env.database_password_mount()],
    }


def build_workers_deployment(
    stack: RetentionStack, *, include_replicas: bool = True
) -> dict[str, Any]:
    """Return the worker Deployment.

    ``include_replicas=False`` leaves ``spec.replicas`` out (the autoscaler's
    field manager owns it after creation); on creation the reconciler passes
    True and the Deployment starts at ``spec.workers.minReplicas``.
    """
    workers = stack.spec.workers
    template_annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(workers.metrics_port),
        "prometheus.io/path": METRICS_PATH,
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels.selector(stack.name, names.COMPONENT_WORKERS)},
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": labels.labels(stack.name, names.COMPONENT_WORKERS),
                "annotations": template_annotations,
            },
            "spec": {
                "securityContext": security.pod_security_context(),
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "containers": [_container(stack)],
                "volumes": [pods.empty_dir("tmp"), env.database_password_volume(stack)],
            },
        },
    }
    if include_replicas:
        spec = {"replicas": workers.min_replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": labels.object_meta(stack, naming.workers(stack.name), names.COMPONENT_WORKERS),
        "spec": spec,
    }
