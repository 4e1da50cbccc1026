"""The API: a Deployment of the workloads image's HTTP server and its Service."""

from __future__ import annotations

from typing import Any

import retention_contract as contract
from retention_operator import names
from retention_operator.builders import env, labels, naming, pods, security
from retention_operator.model import RetentionStack

# The API answers this path once it can serve; the workloads define it.
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def _container(stack: RetentionStack) -> dict[str, Any]:
    api = stack.spec.api
    operator_env = [
        *env.connection_env(stack),
        {"name": contract.ENV_HTTP_PORT, "value": str(api.port)},
    ]
    if api.max_backlog is not None:
        operator_env.append({"name": contract.ENV_QUEUE_MAX_BACKLOG, "value": str(api.max_backlog)})
    return {
        "name": names.COMPONENT_API,
        "image": api.image,
        "command": list(api.command),
        "ports": [
            {"name": naming.API_HTTP_PORT_NAME, "containerPort": api.port, "protocol": "TCP"}
        ],
        "env": env.merge_user_env(operator_env, api.env),
        "resources": pods.resources(api.resources),
        "readinessProbe": pods.http_probe(HEALTH_PATH, naming.API_HTTP_PORT_NAME, period=5),
        "livenessProbe": pods.tcp_probe(naming.API_HTTP_PORT_NAME),
        "startupProbe": pods.startup_probe(naming.API_HTTP_PORT_NAME),
        "securityContext": security.container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, env.database_password_mount()],
    }


def _pod_annotations(port: int) -> dict[str, str]:
    # Lets a Prometheus with the usual kubernetes_sd relabelling find /metrics.
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": METRICS_PATH,
    }


def build_api_deployment(stack: RetentionStack, *, include_replicas: bool = True) -> dict[str, Any]:
    """Return the API Deployment.

    ``include_replicas=False`` leaves ``spec.replicas`` out so that applying
    the manifest does not take the field from the autoscaler's field manager;
    the reconciler passes True only when it creates the Deployment, with
    ``spec.api.minReplicas`` as the first size.
    """
    api = stack.spec.api
    pod_labels = labels.labels(stack.name, names.COMPONENT_API)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels.selector(stack.name, names.COMPONENT_API)},
        # Surge first: the API keeps its full capacity during a rollout.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": pod_labels, "annotations": _pod_annotations(api.port)},
            "spec": {
                "securityContext": security.pod_security_context(),
                "automountServiceAccountToken": False,
                "containers": [_container(stack)],
                "volumes": [pods.empty_dir("tmp"), env.database_password_volume(stack)],
            },
        },
    }
    if include_replicas:
        spec = {"replicas": api.min_replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": labels.object_meta(stack, naming.api(stack.name), names.COMPONENT_API),
        "spec": spec,
    }


def build_api_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the ClusterIP Service in front of the API pods (port = spec.api.port)."""
    port = stack.spec.api.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.object_meta(stack, naming.api(stack.name), names.COMPONENT_API),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(stack.name, names.COMPONENT_API),
            "ports": [
                {
                    "name": naming.API_HTTP_PORT_NAME,
                    "port": port,
                    "targetPort": naming.API_HTTP_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
