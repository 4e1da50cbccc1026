"""Pure configuration of the autoscaling policy, one frozen dataclass per component.

The loop builds these from a RetentionStack's spec; the simulator builds them
directly. Field names are the snake_case of the CRD fields:

* :class:`ScalingConfig` holds what both components share, as the model's shared
  block of scaling fields does;
* :class:`ApiPolicyConfig` adds ``spec.api.autoscaling``'s own fields;
* :class:`WorkerPolicyConfig` adds ``spec.workers.autoscaling``'s own fields.

``stale_after_seconds`` is not in the CRD; its defaults suit each signal's cadence.
Nothing here does I/O or validates a spec; the pydantic model and the CRD's CEL
rules do that.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class ScaleUpLimit:
    """How fast replicas may grow: within any ``period_seconds``, to at most the larger
    of ``start * (1 + percent / 100)`` and ``start + pods``, where ``start`` is the
    desired count at the beginning of the period (the HPA's ``selectPolicy: Max``)."""

    percent: int = 900
    pods: int = 4
    period_seconds: int = 15


@dataclass(frozen=True, kw_only=True, slots=True)
class ScalingConfig:
    """The fields every scaled component shares (the CRD's shared block of scaling fields,
    plus the component's ``minReplicas``/``maxReplicas``).

    ``enabled`` False: replicas are only kept within [min, max]. ``forecast`` True: the
    demand's daily and weekly shape is learned and replicas are brought in ahead of the
    demand it expects (:mod:`.forecast`); False: the policy is reactive only. Missing data holds the
    replicas; after ``fallback_after_failed_ticks`` such ticks in a row they rise to
    ``fallback_replicas`` if set. ``stale_after_seconds``: a sample older than this
    counts as missing. Each component sets its own defaults below.
    """

    enabled: bool = True
    forecast: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    scale_down_stabilization_seconds: int = 120
    scale_up: ScaleUpLimit = ScaleUpLimit()
    fallback_replicas: int | None = None
    fallback_after_failed_ticks: int = 6
    stale_after_seconds: float = 20.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiPolicyConfig(ScalingConfig):
    """Scaling of the API on p95 latency (``spec.api.autoscaling`` and replica bounds).

    ``requests_per_replica_per_second`` is the prior capacity until one is learned
    (None: the first sample sets it). ``stale_after_seconds``: Prometheus scrapes every
    15 s, so 45 s is three missed scrapes.
    """

    min_replicas: int = 2
    max_replicas: int = 10
    scale_down_stabilization_seconds: int = 180
    stale_after_seconds: float = 45.0
    target_p95_milliseconds: int = 200
    requests_per_replica_per_second: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerPolicyConfig(ScalingConfig):
    """Scaling of the workers on drain time (``spec.workers.autoscaling`` and bounds).

    ``scale_to_zero`` requires ``min_replicas == 0`` (the CRD enforces it); from zero
    the workers wake when the backlog reaches ``activation_backlog``.
    ``jobs_per_worker_per_second`` is the prior throughput until one is measured.
    ``stale_after_seconds``: Redis is read every tick, so 20 s is several missed reads.
    """

    min_replicas: int = 1
    max_replicas: int = 20
    scale_down_stabilization_seconds: int = 120
    stale_after_seconds: float = 20.0
    target_queue_wait_seconds: int = 60
    target_drain_seconds: int = 30
    scale_to_zero: bool = False
    activation_backlog: int = 1
    jobs_per_worker_per_second: float = 100.0
