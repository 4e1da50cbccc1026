"""Pure configuration of the autoscaling policy, one frozen dataclass per component.

The loop builds these from a RetentionStack's spec; the simulator builds them
directly. Field names are the snake_case of the CRD fields:

* :class:`ApiPolicyConfig` mirrors ``spec.api.autoscaling`` plus
  ``spec.api.minReplicas``/``maxReplicas``;
* :class:`WorkerPolicyConfig` mirrors ``spec.workers.autoscaling`` plus
  ``spec.workers.minReplicas``/``maxReplicas``.

Fields that are not (yet) in the CRD carry a default that works everywhere:
``max_scale_up_percent``, ``max_scale_up_pods``, ``scale_up_period_seconds``
and ``stale_after_seconds``. Nothing here does I/O or validates a spec; the
pydantic model and the CRD's CEL rules do that.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class ScaleUpLimit:
    """How fast replicas may grow: within any ``period_seconds``, to at most the larger
    of ``start * (1 + percent / 100)`` and ``start + pods``, where ``start`` is the
    desired count at the beginning of the period (the HPA's ``selectPolicy: Max``)."""

    percent: int = 300
    pods: int = 4
    period_seconds: int = 15


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiPolicyConfig:
    """Scaling of the API on p95 latency (``spec.api.autoscaling`` and replica bounds).

    ``stale_after_seconds``: a Prometheus sample older than this counts as missing
    (Prometheus scrapes every 15 s, so 45 s is three missed scrapes).
    """

    enabled: bool = True
    min_replicas: int = 2
    max_replicas: int = 10
    target_p95_milliseconds: int = 200
    scale_down_stabilization_seconds: int = 180
    fallback_replicas: int | None = None
    fallback_after_failed_ticks: int = 6
    scale_up: ScaleUpLimit = ScaleUpLimit()
    stale_after_seconds: float = 45.0


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerPolicyConfig:
    """Scaling of the workers on drain time (``spec.workers.autoscaling`` and bounds).

    ``scale_to_zero`` requires ``min_replicas == 0`` (the CRD enforces it); from zero
    the workers wake when the backlog reaches ``activation_backlog``.
    ``jobs_per_worker_per_second`` is the prior throughput until one is measured.
    ``stale_after_seconds``: a Redis sample older than this counts as missing.
    """

    enabled: bool = True
    min_replicas: int = 1
    max_replicas: int = 20
    target_queue_wait_seconds: int = 60
    target_drain_seconds: int = 30
    scale_down_stabilization_seconds: int = 120
    scale_to_zero: bool = False
    activation_backlog: int = 1
    fallback_replicas: int | None = None
    fallback_after_failed_ticks: int = 6
    jobs_per_worker_per_second: float = 100.0
    scale_up: ScaleUpLimit = ScaleUpLimit()
    stale_after_seconds: float = 20.0
