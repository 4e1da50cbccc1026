"""The Kubernetes HPA controller, ported from upstream, for the simulator's baselines.

Source: k8s.io/kubernetes v1.34.4 (the version the local control plane pins),
``pkg/controller/podautoscaler/horizontal.go`` and ``replica_calculator.go``.
Each function below names the upstream function it ports; the time comparisons
(``Before``/``After``: strict), the reuse of an expired slot in the recommendation
and scale-event lists, and the milli-unit integer arithmetic are kept as upstream
has them, so that upstream's own unit cases (``bench/tests/autoscaling``) pass.

What is modelled: External metrics with ``Value`` and ``AverageValue`` targets
(the only kinds the baselines use: prometheus-adapter and KEDA both serve External
metrics), the choice among several metrics (``computeReplicasForMetrics``), the
bounds, and both normalisation paths of ``reconcileAutoscaler``:

* ``spec.behavior`` unset (what most HPAs run): ``normalizeDesiredReplicas`` -
  stabilisation over the controller's ``--horizontal-pod-autoscaler-downscale-
  stabilization`` window (5 min) taking the *highest* recommendation of the window,
  recommendations above the current count included, then ``convertDesiredReplicasWithRules``:
  scale-up capped at ``max(2 x current, 4)``;
* ``spec.behavior`` set: ``normalizeDesiredReplicasWithBehaviors`` - up and down
  stabilisation windows, then the rate policies over the replicas at the start of
  each policy's period.

Both paths start from ``recordInitialRecommendation``: on its first sync an HPA's
window holds the current replicas (``TestScaleDownStabilizeInitialSize``).
Not modelled: Resource, Pods and Object metrics, the configurable tolerances of
the alpha ``HPAConfigurableTolerance`` gate (off by default), conditions and events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
# horizontal.go: scaleUpLimitFactor, scaleUpLimitMinimum.
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
# The controller's defaults (pkg/controller/podautoscaler/config/v1alpha1/defaults.go).
SYNC_PERIOD_SECONDS = 15.0
DOWNSCALE_STABILISATION_SECONDS = 300.0
TOLERANCE = 0.1

SelectPolicy = Literal["Max", "Min", "Disabled"]


# --- The API's types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """``HPAScalingPolicy``: change at most ``value`` pods or percent per ``period_seconds``."""

    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``HPAScalingRules`` after defaulting; ``stabilization_window_seconds`` None only for
    a scale-down left to the controller's window (``maybeInitScaleDownStabilizationWindow``)."""

    stabilization_window_seconds: int | None
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]


@dataclass(frozen=True, slots=True)
class ScalingRulesSpec:
    """``HPAScalingRules`` as written in a spec: None fields take the defaults."""

    stabilization_window_seconds: int | None = None
    select_policy: SelectPolicy | None = None
    policies: tuple[ScalingPolicy, ...] | None = None


@dataclass(frozen=True, slots=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior`` as written in a spec (None: defaults)."""

    scale_up: ScalingRulesSpec | None = None
    scale_down: ScalingRulesSpec | None = None


# pkg/apis/autoscaling/v2/defaults.go: defaultHPAScaleUpRules, defaultHPAScaleDownRules.
DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(
        ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ScalingPolicy(type="Percent", value=100, period_seconds=15),
    ),
)
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=None,
    select_policy="Max",
    policies=(ScalingPolicy(type="Percent", value=100, period_seconds=15),),
)
# The documented defaults written out, as a user who sets spec.behavior explicitly does.
DOCUMENTED_DEFAULTS = Behavior(
    scale_up=ScalingRulesSpec(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=DEFAULT_SCALE_UP.policies,
    ),
    scale_down=ScalingRulesSpec(
        stabilization_window_seconds=300,
        select_policy="Max",
        policies=DEFAULT_SCALE_DOWN.policies,
    ),
)


def _copy_rules(spec: ScalingRulesSpec | None, defaults: ScalingRules) -> ScalingRules:
    """``copyHPAScalingRules``: the spec's non-nil fields over the defaults."""
    if spec is None:
        return defaults
    return ScalingRules(
        stabilization_window_seconds=(
            spec.stabilization_window_seconds
            if spec.stabilization_window_seconds is not None
            else defaults.stabilization_window_seconds
        ),
        select_policy=spec.select_policy or defaults.select_policy,
        policies=spec.policies if spec.policies is not None else defaults.policies,
    )


def generate_scale_up_rules(spec: ScalingRulesSpec | None) -> ScalingRules:
    """``GenerateHPAScaleUpRules``."""
    return _copy_rules(spec, DEFAULT_SCALE_UP)


def generate_scale_down_rules(spec: ScalingRulesSpec | None) -> ScalingRules:
    """``GenerateHPAScaleDownRules`` (the window may stay None)."""
    return _copy_rules(spec, DEFAULT_SCALE_DOWN)


@dataclass(frozen=True, slots=True)
class AverageValue:
    """``target.type: AverageValue`` (the metric's total divided by the replicas)."""

    average_value: float


@dataclass(frozen=True, slots=True)
class Value:
    """``target.type: Value`` (the metric as a whole)."""

    value: float


@dataclass(frozen=True, slots=True)
class ExternalMetric:
    """``metrics[].external``: a metric by name and its target."""

    name: str
    target: AverageValue | Value


@dataclass(frozen=True, slots=True)
class HpaSpec:
    """The parts of an HPA's spec the controller reads. ``behavior`` None: the legacy path."""

    min_replicas: int
    max_replicas: int
    metrics: tuple[ExternalMetric, ...]
    behavior: Behavior | None = None


@dataclass(frozen=True, slots=True)
class Scale:
    """The target's scale subresource and its pods: ``spec.replicas``, ``status.replicas``
    (pods that exist, starting ones too) and the ready pods."""

    spec_replicas: int
    status_replicas: int
    ready_replicas: int


# --- Milli-units, as resource.Quantity carries them -----------------------------------------


def milli(value: float) -> int:
    """A metric value as the metrics APIs carry it: ``NewMilliQuantity(int64(v * 1000))``
    (KEDA's ``GenerateMetricInMili``; prometheus-adapter does the same), truncated."""
    return min(int(value * 1000), MAX_INT64)


def target_milli(value: float) -> int:
    """A target's ``MilliValue()`` (rounded up, as Quantity rounds)."""
    return math.ceil(value * 1000 - 1e-9)


# --- replica_calculator.go -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tolerances:
    """``Tolerances``: the usage ratio band in which nothing changes."""

    scale_down: float = TOLERANCE
    scale_up: float = TOLERANCE

    def is_within(self, ratio: float) -> bool:
        """``isWithin``."""
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


def get_external_per_pod_metric_replicas(
    *, status_replicas: int, target_per_pod: int, usages: Sequence[int], tolerances: Tolerances
) -> tuple[int, int]:
    """``GetExternalPerPodMetricReplicas``: (replicas, usage per pod), all in milli-units.

    The ratio is taken over ``status.replicas`` (every pod that exists); outside the
    tolerance the proposal is ``ceil(usage / target)``.
    """
    usage = 0
    for value in usages:
        usage += value
        if usage > MAX_INT64:
            usage = MAX_INT64
            break
    replicas = status_replicas
    ratio = usage / (target_per_pod * replicas) if replicas else math.inf
    if not tolerances.is_within(ratio):
        result = math.ceil(usage / target_per_pod)
        replicas = MAX_INT32 if result > MAX_INT32 else int(result)
    per_pod = MAX_INT64 if usage >= MAX_INT64 else math.ceil(usage / max(status_replicas, 1))
    return replicas, per_pod


def get_external_metric_replicas(
    *,
    current_replicas: int,
    target: int,
    usages: Sequence[int],
    ready_replicas: int,
    tolerances: Tolerances,
) -> int:
    """``GetExternalMetricReplicas`` with ``getUsageRatioReplicaCount``: ``Value`` target.

    From zero replicas ``ceil(ratio)``; otherwise the current count within the
    tolerance, else ``ceil(ratio * ready pods)``.
    """
    ratio = sum(usages) / target
    if current_replicas == 0:
        return math.ceil(ratio)
    if tolerances.is_within(ratio):
        return current_replicas
    return math.ceil(ratio * ready_replicas)


# --- horizontal.go: metrics -----------------------------------------------------------------


def compute_replicas_for_metrics(
    *,
    scale: Scale,
    metrics: Sequence[ExternalMetric],
    values: Mapping[str, float | None],
    tolerances: Tolerances,
) -> int:
    """``computeReplicasForMetrics``: the largest proposal; -1 when every metric failed, or
    when one failed and the rest would scale down (then the HPA does not scale)."""
    replicas = 0
    invalid = 0
    for metric in metrics:
        value = values.get(metric.name)
        if value is None:
            invalid += 1
            continue
        usages = [milli(value)]
        if isinstance(metric.target, AverageValue):
            proposal, _ = get_external_per_pod_metric_replicas(
                status_replicas=scale.status_replicas,
                target_per_pod=target_milli(metric.target.average_value),
                usages=usages,
                tolerances=tolerances,
            )
        else:
            proposal = get_external_metric_replicas(
                current_replicas=scale.spec_replicas,
                target=target_milli(metric.target.value),
                usages=usages,
                ready_replicas=scale.ready_replicas,
                tolerances=tolerances,
            )
        if replicas == 0 or proposal > replicas:
            replicas = proposal
    if invalid >= len(metrics) or (invalid > 0 and replicas < scale.spec_replicas):
        return -1
    return replicas


# --- horizontal.go: normalisation -----------------------------------------------------------


@dataclass(slots=True)
class Recommendation:
    """``timestampedRecommendation``."""

    recommendation: int
    timestamp: float


@dataclass(slots=True)
class ScaleEvent:
    """``timestampedScaleEvent``: replicas added (up) or removed (down)."""

    replica_change: int
    timestamp: float
    outdated: bool = False


def stabilize_recommendation(
    recommendations: list[Recommendation], prenormalized: int, *, now: float, window: float
) -> int:
    """``stabilizeRecommendation`` (legacy path): the highest recommendation not older than
    ``window``, this one included; the last expired slot is reused for this one."""
    highest = prenormalized
    old_index: int | None = None
    cutoff = now - window
    for index, rec in enumerate(recommendations):
        if rec.timestamp < cutoff:
            old_index = index
        elif rec.recommendation > highest:
            highest = rec.recommendation
    if old_index is not None:
        recommendations[old_index] = Recommendation(prenormalized, now)
    else:
        recommendations.append(Recommendation(prenormalized, now))
    return highest


def calculate_scale_up_limit(current_replicas: int) -> int:
    """``calculateScaleUpLimit``: ``max(2 x current, 4)``."""
    return int(max(SCALE_UP_LIMIT_FACTOR * current_replicas, SCALE_UP_LIMIT_MINIMUM))


def convert_desired_replicas_with_rules(
    current_replicas: int, desired_replicas: int, min_replicas: int, max_replicas: int
) -> tuple[int, str]:
    """``convertDesiredReplicasWithRules``: (replicas, condition reason)."""
    scale_up_limit = calculate_scale_up_limit(current_replicas)
    if max_replicas > scale_up_limit:
        maximum, condition = scale_up_limit, "ScaleUpLimit"
    else:
        maximum, condition = max_replicas, "TooManyReplicas"
    if desired_replicas < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired_replicas > maximum:
        return maximum, condition
    return desired_replicas, "DesiredWithinRange"


@dataclass(frozen=True, slots=True)
class NormalizationArg:
    """``NormalizationArg``."""

    scale_up: ScalingRules
    scale_down: ScalingRules
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int


def stabilize_recommendation_with_behaviors(
    recommendations: list[Recommendation], args: NormalizationArg, *, now: float
) -> tuple[int, str]:
    """``stabilizeRecommendationWithBehaviors``: the current replicas brought within the
    lowest recommendation of the up window and the highest of the down window."""
    up_window = args.scale_up.stabilization_window_seconds or 0
    down_window = args.scale_down.stabilization_window_seconds or 0
    up_cutoff, down_cutoff = now - up_window, now - down_window
    up, down = args.desired_replicas, args.desired_replicas
    old_index: int | None = None
    for index, rec in enumerate(recommendations):
        if rec.timestamp > up_cutoff:
            up = min(rec.recommendation, up)
        if rec.timestamp > down_cutoff:
            down = max(rec.recommendation, down)
        if rec.timestamp < up_cutoff and rec.timestamp < down_cutoff:
            old_index = index
    recommendation = args.current_replicas
    recommendation = max(recommendation, up)
    recommendation = min(recommendation, down)
    if old_index is not None:
        recommendations[old_index] = Recommendation(args.desired_replicas, now)
    else:
        recommendations.append(Recommendation(args.desired_replicas, now))
    reason = (
        "ScaleUpStabilized"
        if args.desired_replicas >= args.current_replicas
        else "ScaleDownStabilized"
    )
    return recommendation, reason


def get_replicas_change_per_period(period: int, events: Sequence[ScaleEvent], *, now: float) -> int:
    """``getReplicasChangePerPeriod``: replicas changed within the last ``period`` seconds."""
    cutoff = now - period
    return sum(event.replica_change for event in events if event.timestamp > cutoff)


def calculate_scale_up_limit_with_scaling_rules(
    current_replicas: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    *,
    now: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy == "Disabled":
        return current_replicas
    choose = min if rules.select_policy == "Min" else max
    result: int | None = None
    for policy in rules.policies:
        added = get_replicas_change_per_period(policy.period_seconds, up_events, now=now)
        removed = get_replicas_change_per_period(policy.period_seconds, down_events, now=now)
        start = current_replicas - added + removed
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            proposed = math.ceil(start * (1 + policy.value / 100))
        result = proposed if result is None else choose(result, proposed)
    return MAX_INT32 * (-1 if choose is max else 1) if result is None else result


def calculate_scale_down_limit_with_behaviors(
    current_replicas: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    *,
    now: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``."""
    if rules.select_policy == "Disabled":
        return current_replicas
    choose = max if rules.select_policy == "Min" else min
    result: int | None = None
    for policy in rules.policies:
        added = get_replicas_change_per_period(policy.period_seconds, up_events, now=now)
        removed = get_replicas_change_per_period(policy.period_seconds, down_events, now=now)
        start = current_replicas - added + removed
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = int(start * (1 - policy.value / 100))
        result = proposed if result is None else choose(result, proposed)
    return MAX_INT32 * (1 if choose is min else -1) if result is None else result


def convert_desired_replicas_with_behavior_rate(
    args: NormalizationArg,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    *,
    now: float,
) -> tuple[int, str]:
    """``convertDesiredReplicasWithBehaviorRate``: (replicas, condition reason)."""
    if args.desired_replicas > args.current_replicas:
        limit = calculate_scale_up_limit_with_scaling_rules(
            args.current_replicas, up_events, down_events, args.scale_up, now=now
        )
        limit = max(limit, args.current_replicas)
        if args.max_replicas > limit:
            maximum, reason = limit, "ScaleUpLimit"
        else:
            maximum, reason = args.max_replicas, "TooManyReplicas"
        if args.desired_replicas > maximum:
            return maximum, reason
    elif args.desired_replicas < args.current_replicas:
        limit = calculate_scale_down_limit_with_behaviors(
            args.current_replicas, up_events, down_events, args.scale_down, now=now
        )
        limit = min(limit, args.current_replicas)
        if args.min_replicas < limit:
            minimum, reason = limit, "ScaleDownLimit"
        else:
            minimum, reason = args.min_replicas, "TooFewReplicas"
        if args.desired_replicas < minimum:
            return minimum, reason
    return args.desired_replicas, "DesiredWithinRange"


def _longest_policy_period(rules: ScalingRules) -> int:
    """``getLongestPolicyPeriod``."""
    return max((policy.period_seconds for policy in rules.policies), default=0)


def mark_scale_events_outdated(events: Sequence[ScaleEvent], longest: int, *, now: float) -> None:
    """``markScaleEventsOutdated``: events older than the longest period may be reused."""
    cutoff = now - longest
    for event in events:
        if event.timestamp < cutoff:
            event.outdated = True


def store_scale_event(
    behavior: Behavior | None,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    prev_replicas: int,
    new_replicas: int,
    *,
    now: float,
) -> None:
    """``storeScaleEvent``: keep the event (reusing the last outdated slot); without a
    behavior nothing is stored, as nothing would read it."""
    if behavior is None:
        return
    if new_replicas > prev_replicas:
        events = up_events
        longest = _longest_policy_period(generate_scale_up_rules(behavior.scale_up))
        change = new_replicas - prev_replicas
    else:
        events = down_events
        longest = _longest_policy_period(generate_scale_down_rules(behavior.scale_down))
        change = prev_replicas - new_replicas
    mark_scale_events_outdated(events, longest, now=now)
    old_index: int | None = None
    for index, event in enumerate(events):
        if event.outdated:
            old_index = index
    if old_index is not None:
        events[old_index] = ScaleEvent(change, now)
    else:
        events.append(ScaleEvent(change, now))


# --- horizontal.go: the controller -----------------------------------------------------------


@dataclass(slots=True)
class HorizontalController:
    """The HPA controller's memory of one HPA and its ``reconcileAutoscaler``.

    ``downscale_stabilisation_seconds`` and ``tolerance`` are the controller's flags
    (defaults 5 min and 0.1). Call :meth:`reconcile` once per sync period.
    """

    spec: HpaSpec
    downscale_stabilisation_seconds: float = DOWNSCALE_STABILISATION_SECONDS
    tolerance: float = TOLERANCE
    recommendations: list[Recommendation] | None = None
    scale_up_events: list[ScaleEvent] = field(default_factory=list)
    scale_down_events: list[ScaleEvent] = field(default_factory=list)

    def reconcile(self, *, now: float, scale: Scale, values: Mapping[str, float | None]) -> int:
        """One sync: the replicas to set (``scale.spec_replicas`` when nothing changes).

        ``values`` maps each metric's name to what the metrics API served, None when
        the request failed.
        """
        spec = self.spec
        current = scale.spec_replicas
        if self.recommendations is None:
            # recordInitialRecommendation: the window starts out holding the current count.
            self.recommendations = [Recommendation(current, now)]
        minimum = spec.min_replicas
        if current == 0 and minimum != 0:
            return 0
        if current > spec.max_replicas:
            desired = spec.max_replicas
        elif current < minimum:
            desired = minimum
        else:
            proposal = compute_replicas_for_metrics(
                scale=scale,
                metrics=spec.metrics,
                values=values,
                tolerances=Tolerances(self.tolerance, self.tolerance),
            )
            if proposal == -1:
                return current
            desired = max(proposal, 0)
            if spec.behavior is None:
                desired = self._normalize(current, desired, now=now)
            else:
                desired = self._normalize_with_behaviors(current, desired, now=now)
        if desired != current:
            store_scale_event(
                spec.behavior,
                self.scale_up_events,
                self.scale_down_events,
                current,
                desired,
                now=now,
            )
        return desired

    def _normalize(self, current: int, prenormalized: int, *, now: float) -> int:
        """``normalizeDesiredReplicas``: stabilise over the window, then the legacy rules."""
        assert self.recommendations is not None
        stabilized = stabilize_recommendation(
            self.recommendations,
            prenormalized,
            now=now,
            window=self.downscale_stabilisation_seconds,
        )
        desired, _ = convert_desired_replicas_with_rules(
            current, stabilized, self.spec.min_replicas, self.spec.max_replicas
        )
        return desired

    def _normalize_with_behaviors(self, current: int, prenormalized: int, *, now: float) -> int:
        """``normalizeDesiredReplicasWithBehaviors``, with the scale-down window left unset
        taken from the controller (``maybeInitScaleDownStabilizationWindow``)."""
        assert self.recommendations is not None and self.spec.behavior is not None
        up = generate_scale_up_rules(self.spec.behavior.scale_up)
        down = generate_scale_down_rules(self.spec.behavior.scale_down)
        if down.stabilization_window_seconds is None:
            window = int(self.downscale_stabilisation_seconds)
            down = ScalingRules(window, down.select_policy, down.policies)
        args = NormalizationArg(
            scale_up=up,
            scale_down=down,
            min_replicas=self.spec.min_replicas,
            max_replicas=self.spec.max_replicas,
            current_replicas=current,
            desired_replicas=prenormalized,
        )
        stabilized, _ = stabilize_recommendation_with_behaviors(self.recommendations, args, now=now)
        limited = NormalizationArg(
            scale_up=up,
            scale_down=down,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            current_replicas=current,
            desired_replicas=stabilized,
        )
        desired, _ = convert_desired_replicas_with_behavior_rate(
            limited, self.scale_up_events, self.scale_down_events, now=now
        )
        return desired
