"""The three arms' scaling, as manifests (pure): the stack, and what each arm adds.

Every arm runs the same stack (:func:`stack`): the project's images, each pod's
capacity bounded by the workloads' own settings, the same replica bounds and
targets. What differs:

* ``retention``: the operator's autoscaler scales both Deployments (the spec's
  ``autoscaling.enabled``, the default).
* ``keda``: one ScaledObject per Deployment, as a careful user writes them
  (:func:`scaled_objects`): the workers on the stream's ``lagCount``, the API on its
  request rate per pod read from the Prometheus that scrapes it; default polling,
  cooldown and HPA behaviour.
* ``hpa``: one ``autoscaling/v2`` HorizontalPodAutoscaler per Deployment on CPU at
  70 % utilisation, min and max as the stack's, as the project's scaling strategy
  sets it (:func:`hpas`).

Handing ``spec.replicas`` over for keda and hpa: the stack is created with
``autoscaling.enabled: false`` on both components. The reconciler never applies
``spec.replicas`` after creation, and a disabled autoscaler only brings replicas
back within ``[minReplicas, maxReplicas]``: the HPA (KEDA's or the plain one) has
the same bounds, so it never leaves them and the operator never writes the field.
The HPA controller writes it through the scale subresource, which moves the
field's ownership to it. The run checks that the operator posted no ScaledUp or
ScaledDown Event in those arms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import retention_contract as contract

ARMS = ("retention", "keda", "hpa")
STACK = "cl"
DATABASE_CA = "cl-postgres-ca"
"""ConfigMap (key ``ca.crt``) with the CA of the PostgreSQL's certificate (verify-full)."""
REDIS_SECRET = "cl-redis"
"""Secret (key ``password``) with the password of the arm's Redis: the stack and KEDA read it."""
GROUP = contract.DEFAULT_QUEUE_GROUP


@dataclass(frozen=True, slots=True)
class Plant:
    """Per-pod capacity and the stack's bounds and targets, the same in every arm."""

    api_service_ms: int = 100
    api_concurrency: int = 2
    job_io_ms: int = 200
    worker_concurrency: int = 2
    api_min: int = 2
    api_max: int = 10
    workers_min: int = 1
    workers_max: int = 8
    target_p95_ms: int = 400
    target_queue_wait_s: int = 20
    target_drain_s: int = 10
    api_cpu_request: str = "40m"
    worker_cpu_request: str = "25m"

    @property
    def worker_jobs_per_s(self) -> float:
        """Jobs one worker completes per second when busy (I/O wait only, by construction)."""
        return self.worker_concurrency * 1000 / self.job_io_ms


def stack(
    plant: Plant,
    *,
    arm: str,
    namespace: str,
    image: str,
    pgbouncer_image: str,
    redis_url: str,
    database: dict[str, Any],
    database_secret: str,
    prometheus_url: str,
) -> dict[str, Any]:
    """The RetentionStack of one arm; only ``autoscaling.enabled`` depends on the arm."""
    ours = arm == "retention"
    api_env = [
        {"name": contract.ENV_API_SERVICE_MS, "value": str(plant.api_service_ms)},
        {"name": contract.ENV_API_CONCURRENCY, "value": str(plant.api_concurrency)},
    ]
    return {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": STACK, "namespace": namespace},
        "spec": {
            "api": {
                "image": image,
                "minReplicas": plant.api_min,
                "maxReplicas": plant.api_max,
                "env": api_env,
                "resources": {"requests": {"cpu": plant.api_cpu_request, "memory": "96Mi"}},
                "autoscaling": {
                    "enabled": ours,
                    "targetP95Milliseconds": plant.target_p95_ms,
                    "prometheusUrl": prometheus_url,
                },
            },
            "workers": {
                "minReplicas": plant.workers_min,
                "maxReplicas": plant.workers_max,
                "concurrency": plant.worker_concurrency,
                "env": [{"name": contract.ENV_JOB_IO_MS, "value": str(plant.job_io_ms)}],
                "resources": {"requests": {"cpu": plant.worker_cpu_request, "memory": "96Mi"}},
                "autoscaling": {
                    "enabled": ours,
                    "targetQueueWaitSeconds": plant.target_queue_wait_s,
                    "targetDrainSeconds": plant.target_drain_s,
                },
            },
            "redis": {
                "external": {
                    "url": redis_url,
                    "passwordSecretRef": {"name": REDIS_SECRET, "key": "password"},
                }
            },
            "pgbouncer": {
                "image": pgbouncer_image,
                "replicas": 1,
                "database": database,
                "credentialsSecretRef": {"name": database_secret},
                "tls": {"ca": {"configMapKeyRef": {"name": DATABASE_CA, "key": "ca.crt"}}},
            },
        },
    }


def hpas(plant: Plant, *, namespace: str) -> list[dict[str, Any]]:
    """The plain HPA on CPU at 70 % for the API and the workers, bounds as the stack's."""

    def one(deployment: str, low: int, high: int) -> dict[str, Any]:
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment,
                },
                "minReplicas": low,
                "maxReplicas": high,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        }

    return [
        one(f"{STACK}-api", plant.api_min, plant.api_max),
        one(f"{STACK}-workers", plant.workers_min, plant.workers_max),
    ]


def keda_targets(plant: Plant, *, api_rps_per_pod: float) -> tuple[float, int]:
    """(requests/s per API pod, lag per worker) a careful user sets, as ``bench.autoscaling``
    does: 80 % of the rate one pod was measured to serve, and half the wait target's
    worth of one worker's throughput."""
    return (
        round(0.8 * api_rps_per_pod, 1),
        max(round(0.5 * plant.target_queue_wait_s * plant.worker_jobs_per_s), 1),
    )


def scaled_objects(
    plant: Plant,
    *,
    namespace: str,
    stream: str,
    redis_address: str,
    prometheus_url: str,
    api_rps_per_pod: float,
) -> list[dict[str, Any]]:
    """KEDA's ScaledObjects: the API on requests/s per pod, the workers on stream lag (with
    the Redis password from :data:`REDIS_SECRET` through a TriggerAuthentication)."""
    rps_target, lag_target = keda_targets(plant, api_rps_per_pod=api_rps_per_pod)
    rate = (
        f"sum(rate({contract.METRIC_API_REQUEST_DURATION}_count"
        f'{{namespace="{namespace}",stack="{STACK}"}}[1m]))'
    )

    def one(deployment: str, low: int, high: int, trigger: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {
                "scaleTargetRef": {"name": deployment},
                "minReplicaCount": low,
                "maxReplicaCount": high,
                "triggers": [trigger],
            },
        }

    auth = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "cl-redis", "namespace": namespace},
        "spec": {
            "secretTargetRef": [{"parameter": "password", "name": REDIS_SECRET, "key": "password"}]
        },
    }
    return [
        auth,
        one(
            f"{STACK}-api",
            plant.api_min,
            plant.api_max,
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": rate,
                    "threshold": str(rps_target),
                },
            },
        ),
        one(
            f"{STACK}-workers",
            plant.workers_min,
            plant.workers_max,
            {
                "type": "redis-streams",
                "metadata": {
                    "address": redis_address,
                    "stream": stream,
                    "consumerGroup": GROUP,
                    "lagCount": str(lag_target),
                },
                "authenticationRef": {"name": "cl-redis"},
            },
        ),
    ]
