"""KEDA's ScaledObject, as its operator and metrics server run it, over the simulator's HPA.

Source: github.com/kedacore/keda main at 8b4f083 (2026-08-20, after v2.20.2; the
snapshot read for v2.21.0, whose tag it does not carry):

* ``controllers/keda/hpa.go``: KEDA owns an HPA with one External metric per trigger
  (``AverageValue`` unless ``metricType`` says otherwise) and ``behavior`` left nil
  unless ``advanced.horizontalPodAutoscalerConfig.behavior`` is set - so the HPA takes
  the legacy path; its ``minReplicas`` is ``minReplicaCount``, or 1 when that is 0.
* ``pkg/scaling/scale_handler.go`` ``GetScaledObjectMetrics``: the metrics server asks
  the scaler afresh on every HPA request, unless the trigger sets
  ``useCachedMetrics: true``; then it serves the record the polling loop stored.
* ``pkg/scaling/executor/scale_scaledobjects.go`` ``RequestScale``: the polling loop
  (every ``pollingInterval``, default 30 s) scales from 0 to ``max(minReplicaCount, 1)``
  when a trigger is active, and to ``minReplicaCount`` = 0 once no trigger was active for
  ``cooldownPeriod`` (default 300 s). Between 1 and max the HPA alone decides.
* ``pkg/scalers/redis_streams_scaler.go``: with ``lagCount`` the metric is the group's
  ``lag`` (XINFO GROUPS), active above ``activationLagCount`` (default 0).
* ``pkg/scalers/prometheus_scaler.go``: the query's value, active above
  ``activationThreshold`` (default 0); ``ignoreNullValues`` (default true) reads an empty
  result as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.autoscaling.hpa import (
    AverageValue,
    ExternalMetric,
    HorizontalController,
    HpaSpec,
    Scale,
)

DEFAULT_POLLING_INTERVAL_S = 30.0
DEFAULT_COOLDOWN_PERIOD_S = 300.0

Reader = Callable[[str], float | None]
"""Reads a trigger's metric now: its value, or None when the scaler fails."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger: its metric name, ``AverageValue`` target and activation threshold."""

    metric: str
    target: float
    activation: float = 0.0


@dataclass(frozen=True, slots=True)
class ScaledObjectSpec:
    """The parts of a ScaledObject that decide scaling."""

    min_replica_count: int
    max_replica_count: int
    triggers: tuple[Trigger, ...]
    use_cached_metrics: bool = False
    polling_interval_s: float = DEFAULT_POLLING_INTERVAL_S
    cooldown_period_s: float = DEFAULT_COOLDOWN_PERIOD_S


@dataclass(slots=True)
class ScaledObject:
    """A ScaledObject and the HPA KEDA made for it: :meth:`poll` is KEDA's loop,
    :meth:`sync` the HPA controller reading KEDA's metrics server."""

    spec: ScaledObjectSpec
    hpa: HorizontalController = field(init=False)
    cache: dict[str, float | None] = field(default_factory=dict)
    last_active: float | None = None

    def __post_init__(self) -> None:
        metrics = tuple(
            ExternalMetric(t.metric, AverageValue(t.target)) for t in self.spec.triggers
        )
        self.hpa = HorizontalController(
            HpaSpec(
                min_replicas=max(self.spec.min_replica_count, 1),
                max_replicas=self.spec.max_replica_count,
                metrics=metrics,
            )
        )

    def poll(self, *, now: float, replicas: int, read: Reader) -> int | None:
        """KEDA's polling loop: read every trigger (and store the records when cached);
        return the replicas it sets itself (0 <-> 1), or None when it leaves them be."""
        values = {t.metric: read(t.metric) for t in self.spec.triggers}
        if self.spec.use_cached_metrics:
            self.cache.update(values)
        active = any(
            (value if value is not None else 0.0) > trigger.activation
            for trigger, value in zip(self.spec.triggers, values.values(), strict=True)
        )
        minimum = self.spec.min_replica_count
        if active:
            if replicas == 0:
                self.last_active = now
                return max(minimum, 1)
            self.last_active = now
            return None
        cooled = self.last_active is None or self.last_active + self.spec.cooldown_period_s < now
        if replicas > 0 and minimum == 0 and cooled:
            return 0
        return None

    def sync(self, *, now: float, scale: Scale, read: Reader) -> int:
        """One HPA sync on what KEDA's metrics server serves: a fresh read of each
        trigger, or its cached record with ``useCachedMetrics``."""
        values: Mapping[str, float | None]
        if self.spec.use_cached_metrics:
            values = {
                t.metric: self.cache[t.metric] if t.metric in self.cache else read(t.metric)
                for t in self.spec.triggers
            }
        else:
            values = {t.metric: read(t.metric) for t in self.spec.triggers}
        return self.hpa.reconcile(now=now, scale=scale, values=values)
