"""Baselines: the Kubernetes HPA v2 algorithm and KEDA-style scaling, pure.

The simulator runs these against the same plant as :mod:`.policy` to show what
teams get today. They follow the upstream controller (``pkg/controller/podautoscaler``
``horizontal.go`` and ``replica_calculator.go``) and KEDA's documented behaviour:

HPA, every ``sync_period_seconds`` (15 s):

* per metric, a proposal: ``Value`` target: ``ceil(ready * value / target)``;
  ``AverageValue`` target (External): ``ceil(total / target)``; no change while the
  usage ratio is within ``1 +- tolerance`` (0.1);
* the largest proposal wins; if a metric is missing and the rest would scale down,
  or all are missing, nothing changes;
* replicas outside [min, max] are first brought inside;
* ``behavior``: stabilization (up: the lowest, down: the highest recommendation of
  the window; defaults 0 s and 300 s), then rate policies over the replicas at the
  start of each policy's period (defaults: up ``max(+4 pods, +100 %)`` per 15 s,
  down ``100 %`` per 15 s), then min/max.

KEDA-style: the scaler polls every ``polling_interval_seconds`` (30 s) and the HPA
reads the last polled value as an External metric (``AverageValue`` by default);
after more than ``failure_threshold`` failed polls a fallback feeds the HPA
``fallback_replicas * target`` so that it settles on ``fallback_replicas``; the
Prometheus scaler's ``ignoreNullValues`` turns an empty result into 0.

Public API: :class:`HpaScalingPolicy`, :class:`HpaScalingRules`, :class:`HpaConfig`,
:class:`ValueTarget`, :class:`AverageValueTarget`, :class:`MetricReading`,
:class:`HpaState`, :class:`HpaDecision`, :func:`hpa_sync`,
:func:`replicas_for_value`, :func:`replicas_for_average_value`,
:class:`KedaConfig`, :class:`KedaState`, :func:`keda_poll`, :func:`keda_metric`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

Events = tuple[tuple[float, int], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class HpaScalingPolicy:
    """One rate policy: change at most ``value`` pods or percent per ``period_seconds``."""

    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HpaScalingRules:
    """``behavior.scaleUp`` or ``behavior.scaleDown``."""

    stabilization_window_seconds: int
    policies: tuple[HpaScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


DEFAULT_SCALE_UP = HpaScalingRules(
    stabilization_window_seconds=0,
    policies=(
        HpaScalingPolicy(type="Pods", value=4, period_seconds=15),
        HpaScalingPolicy(type="Percent", value=100, period_seconds=15),
    ),
)
DEFAULT_SCALE_DOWN = HpaScalingRules(
    stabilization_window_seconds=300,
    policies=(HpaScalingPolicy(type="Percent", value=100, period_seconds=15),),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class HpaConfig:
    """An HPA's spec: bounds, behavior (the defaults above) and the controller's tolerance."""

    min_replicas: int
    max_replicas: int
    scale_up: HpaScalingRules = DEFAULT_SCALE_UP
    scale_down: HpaScalingRules = DEFAULT_SCALE_DOWN
    tolerance: float = 0.1
    sync_period_seconds: int = 15


@dataclass(frozen=True, slots=True)
class ValueTarget:
    """``target.type: Value``: the metric as a whole should equal ``value``."""

    value: float


@dataclass(frozen=True, slots=True)
class AverageValueTarget:
    """``target.type: AverageValue``: the metric divided by replicas should equal it."""

    average_value: float


@dataclass(frozen=True, slots=True)
class MetricReading:
    """One metric at one sync: its target and its value, None if it could not be read."""

    target: ValueTarget | AverageValueTarget
    value: float | None


@dataclass(frozen=True, slots=True)
class HpaState:
    """What the controller remembers per HPA: recent recommendations and scale events."""

    recommendations: Events = ()
    scale_up_events: Events = ()
    scale_down_events: Events = ()


@dataclass(frozen=True, slots=True)
class HpaDecision:
    """The replicas the HPA sets, why (one sentence), and its state for the next sync."""

    desired: int
    reason: str
    state: HpaState = field(default_factory=HpaState)


def replicas_for_value(
    *, value: float, target: float, current: int, ready: int, tolerance: float = 0.1
) -> int:
    """Proposal for a ``Value`` target: ``current`` within tolerance, else
    ``ceil(ready * value / target)`` (``ceil(ratio)`` when there are no replicas)."""
    ratio = value / target
    if current == 0:
        return math.ceil(ratio)
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * ready)


def replicas_for_average_value(
    *, total: float, target: float, status_replicas: int, tolerance: float = 0.1
) -> int:
    """Proposal for an External ``AverageValue`` target: ``ceil(total / target)``, or
    ``status_replicas`` while ``total / (target * status_replicas)`` is within tolerance."""
    if status_replicas > 0:
        ratio = total / (target * status_replicas)
        if abs(1.0 - ratio) <= tolerance:
            return status_replicas
    return math.ceil(total / target)


def hpa_sync(
    *,
    now: float,
    spec_replicas: int,
    status_replicas: int,
    ready_replicas: int,
    readings: Sequence[MetricReading],
    config: HpaConfig,
    state: HpaState,
) -> HpaDecision:
    """One sync of the HPA controller; returns the replicas to set (``spec_replicas``
    when nothing changes) and the state for the next sync."""
    if spec_replicas == 0 and config.min_replicas > 0:
        return HpaDecision(
            spec_replicas, "Scaling is disabled since the replica count is 0.", state
        )
    if spec_replicas > config.max_replicas:
        return HpaDecision(config.max_replicas, "Current replicas above maxReplicas.", state)
    if spec_replicas < config.min_replicas:
        return HpaDecision(config.min_replicas, "Current replicas below minReplicas.", state)
    proposal = _proposal(spec_replicas, status_replicas, ready_replicas, readings, config)
    if proposal is None:
        return HpaDecision(spec_replicas, "Failed to get metrics, so nothing changed.", state)
    stabilized, recommendations = _stabilize(now, proposal, spec_replicas, config, state)
    desired = _rate_limit(now, stabilized, spec_replicas, config, state)
    state = replace(state, recommendations=recommendations)
    state = _record_event(now, spec_replicas, desired, config, state)
    reason = f"Metrics proposed {proposal}, stabilized to {stabilized}, rate-limited to {desired}."
    return HpaDecision(desired, reason, state)


def _proposal(
    spec_replicas: int,
    status_replicas: int,
    ready_replicas: int,
    readings: Sequence[MetricReading],
    config: HpaConfig,
) -> int | None:
    """The largest per-metric proposal; None if all metrics are missing, or some are
    and the rest would scale down (the controller then does not scale)."""
    proposals = []
    for reading in readings:
        if reading.value is None:
            continue
        if isinstance(reading.target, ValueTarget):
            proposals.append(
                replicas_for_value(
                    value=reading.value,
                    target=reading.target.value,
                    current=spec_replicas,
                    ready=ready_replicas,
                    tolerance=config.tolerance,
                )
            )
        else:
            proposals.append(
                replicas_for_average_value(
                    total=reading.value,
                    target=reading.target.average_value,
                    status_replicas=status_replicas,
                    tolerance=config.tolerance,
                )
            )
    missing = len(readings) - len(proposals)
    if not proposals or (missing and max(proposals) < spec_replicas):
        return None
    return max(proposals)


def _stabilize(
    now: float, proposal: int, current: int, config: HpaConfig, state: HpaState
) -> tuple[int, Events]:
    """Up: the lowest recommendation of the up window; down: the highest of the down
    window; the current replicas bounded by both. Records this proposal."""
    up_cutoff = now - config.scale_up.stabilization_window_seconds
    down_cutoff = now - config.scale_down.stabilization_window_seconds
    up, down = proposal, proposal
    for at, recommendation in state.recommendations:
        if at > up_cutoff:
            up = min(up, recommendation)
        if at > down_cutoff:
            down = max(down, recommendation)
    stabilized = min(max(current, up), down)
    horizon = min(up_cutoff, down_cutoff)
    kept = tuple((at, r) for at, r in state.recommendations if at >= horizon)
    return stabilized, (*kept, (now, proposal))


def _changed_in_period(events: Events, now: float, period: int) -> int:
    return sum(n for at, n in events if at > now - period)


def _rate_limit(now: float, desired: int, current: int, config: HpaConfig, state: HpaState) -> int:
    """Bound a change by the behavior's rate policies, then by min/max."""
    if desired > current:
        limit = _scale_up_limit(now, current, config.scale_up, state)
        return min(desired, max(limit, current), config.max_replicas)
    if desired < current:
        limit = _scale_down_limit(now, current, config.scale_down, state)
        return max(desired, min(limit, current), config.min_replicas)
    return desired


def _period_start(now: float, current: int, period: int, state: HpaState) -> int:
    added = _changed_in_period(state.scale_up_events, now, period)
    removed = _changed_in_period(state.scale_down_events, now, period)
    return current - added + removed


def _scale_up_limit(now: float, current: int, rules: HpaScalingRules, state: HpaState) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(now, current, policy.period_seconds, state)
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def _scale_down_limit(now: float, current: int, rules: HpaScalingRules, state: HpaState) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(now, current, policy.period_seconds, state)
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def _record_event(
    now: float, current: int, desired: int, config: HpaConfig, state: HpaState
) -> HpaState:
    """Store a scale event and forget events older than the longest policy period."""
    longest = max(
        (p.period_seconds for p in (*config.scale_up.policies, *config.scale_down.policies)),
        default=0,
    )
    ups = tuple(e for e in state.scale_up_events if e[0] > now - longest)
    downs = tuple(e for e in state.scale_down_events if e[0] > now - longest)
    if desired > current:
        ups = (*ups, (now, desired - current))
    elif desired < current:
        downs = (*downs, (now, current - desired))
    return replace(state, scale_up_events=ups, scale_down_events=downs)


# --- KEDA-style ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class KedaConfig:
    """A ScaledObject's polling and fallback (``fallback.failureThreshold``/``replicas``)."""

    polling_interval_seconds: int = 30
    failure_threshold: int | None = None
    fallback_replicas: int | None = None
    ignore_null_values: bool = True


@dataclass(frozen=True, slots=True)
class KedaState:
    """The last polled value (None before the first success), when, and failures in a row."""

    value: float | None = None
    polled_at: float | None = None
    failures: int = 0


def keda_poll(
    *, now: float, value: float | None, failed: bool, config: KedaConfig, state: KedaState
) -> KedaState:
    """Poll once if the interval has passed: keep the value, or count a failure.

    ``value`` None with ``failed`` False is an empty result: 0 when
    ``ignore_null_values`` holds, else a failure.
    """
    if state.polled_at is not None and now - state.polled_at < config.polling_interval_seconds:
        return state
    if value is None and not failed and config.ignore_null_values:
        value = 0.0
    if failed or value is None:
        return KedaState(value=state.value, polled_at=now, failures=state.failures + 1)
    return KedaState(value=value, polled_at=now, failures=0)


def keda_metric(*, state: KedaState, config: KedaConfig, target: float) -> float | None:
    """The value the HPA reads: the last poll, or ``fallback_replicas * target`` after
    more than ``failure_threshold`` failures in a row (None if no fallback is set)."""
    if state.failures == 0:
        return state.value
    threshold = config.failure_threshold
    if (
        threshold is not None
        and state.failures > threshold
        and config.fallback_replicas is not None
    ):
        return config.fallback_replicas * target
    return None
