"""The simulator's HPA passes the Kubernetes HPA controller's own unit cases (v1.34.4).

Each test is named after its upstream case in
``pkg/controller/podautoscaler/horizontal_test.go`` or ``replica_calculator_test.go``;
table cases keep their upstream names as pytest ids. Times are seconds before
``NOW``, as upstream's are durations before ``time.Now()``; metric values are the
milli-units upstream's fake metrics clients report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.autoscaling.hpa import (
    AverageValue,
    Behavior,
    ExternalMetric,
    HorizontalController,
    HpaSpec,
    NormalizationArg,
    Recommendation,
    Scale,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    ScalingRulesSpec,
    Tolerances,
    calculate_scale_up_limit,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    generate_scale_down_rules,
    generate_scale_up_rules,
    get_external_metric_replicas,
    get_external_per_pod_metric_replicas,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
)

NOW = 1_000_000.0
MINUTE = 60.0


def generate_scaling_rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> ScalingRulesSpec:
    """Upstream's ``generateScalingRules``: Max select, the given policies and window."""
    policies = []
    if pods:
        policies.append(ScalingPolicy(type="Pods", value=pods, period_seconds=pods_period))
    if percent:
        policies.append(ScalingPolicy(type="Percent", value=percent, period_seconds=percent_period))
    return ScalingRulesSpec(
        stabilization_window_seconds=window, select_policy="Max", policies=tuple(policies)
    )


def generate_events_uniform_distribution(changes: list[int], period: int) -> list[ScaleEvent]:
    """Upstream's ``generateEventsUniformDistribution``: events centred in equal segments
    of the last ``period`` seconds, the first the oldest."""
    segment = period / len(changes)
    return [
        ScaleEvent(change, NOW - int(period - segment * (index + 1) + segment / 2))
        for index, change in enumerate(changes)
    ]


# --- TestConvertDesiredReplicasWithRules --------------------------------------------------

CONVERSION_CASES = [
    # (current, desired, min, max, expected, condition, upstream annotation)
    (5, 7, 3, 8, 7, "DesiredWithinRange", "prenormalized desired replicas within range"),
    (3, 1, 2, 8, 2, "TooFewReplicas", "prenormalized desired replicas < minReplicas"),
    (1, 0, 0, 10, 0, "DesiredWithinRange", "prenormalized desired zeroed replicas within range"),
    (
        20,
        1000,
        1,
        10,
        10,
        "TooManyReplicas",
        "maxReplicas is the limit because maxReplicas < scaleUpLimit",
    ),
    (
        3,
        1000,
        1,
        2000,
        calculate_scale_up_limit(3),
        "ScaleUpLimit",
        "scaleUpLimit is the limit because scaleUpLimit < maxReplicas",
    ),
]


@pytest.mark.parametrize(
    ("current", "desired", "low", "high", "expected", "condition"),
    [case[:6] for case in CONVERSION_CASES],
    ids=[case[6] for case in CONVERSION_CASES],
)
def test_convert_desired_replicas_with_rules(
    current: int, desired: int, low: int, high: int, expected: int, condition: str
) -> None:
    assert convert_desired_replicas_with_rules(current, desired, low, high) == (
        expected,
        condition,
    )


# --- TestScalingWithRules -----------------------------------------------------------------


@dataclass(frozen=True)
class RulesCase:
    name: str
    current: int
    desired: int
    low: int
    high: int
    expected: int
    condition: str
    up: ScalingRulesSpec | None = None
    down: ScalingRulesSpec | None = None
    up_events: tuple[tuple[int, ...], int] | None = None
    down_events: tuple[tuple[int, ...], int] | None = None


R = generate_scaling_rules
SCALING_WITH_RULES = [
    RulesCase("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    RulesCase("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    RulesCase(
        "prenormalized desired replicas within range when minReplicas is 0",
        1,
        0,
        0,
        10,
        0,
        "DesiredWithinRange",
    ),
    RulesCase(
        "maxReplicas is the limit because maxReplicas < scaleUpLimit",
        20,
        1000,
        1,
        10,
        10,
        "TooManyReplicas",
    ),
    RulesCase(
        "desired replica count is more than the maximum replica count",
        100,
        1000,
        100,
        150,
        150,
        "TooManyReplicas",
    ),
    RulesCase(
        "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
        3,
        1000,
        1,
        2000,
        4,
        "ScaleUpLimit",
        up=R(0, 0, 1, 60, 0),
    ),
    # Upstream marks this case testThis and returns before checking it; it holds all the same.
    RulesCase(
        "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined "
        "policies",
        1000,
        3,
        3,
        2000,
        980,
        "ScaleDownLimit",
        down=R(20, 60, 0, 0, 0),
    ),
    RulesCase("scaleUp with default behavior", 10, 50, 1, 1000, 20, "ScaleUpLimit"),
    RulesCase(
        "scaleUp with pods policy larger than percent policy",
        10,
        500,
        1,
        1000,
        110,
        "ScaleUpLimit",
        up=R(100, 60, 100, 60, 0),
    ),
    RulesCase(
        "scaleUp with percent policy larger than pods policy",
        10,
        500,
        1,
        1000,
        20,
        "ScaleUpLimit",
        up=R(2, 60, 100, 60, 0),
    ),
    RulesCase(
        "scaleUp with spec MaxReplicas limitation with large pod policy",
        10,
        50,
        1,
        1000,
        50,
        "DesiredWithinRange",
        up=R(100, 60, 0, 0, 0),
    ),
    RulesCase(
        "scaleUp with spec MaxReplicas limitation with large percent policy",
        10,
        50,
        1,
        1000,
        50,
        "DesiredWithinRange",
        up=R(10000, 60, 0, 0, 0),
    ),
    RulesCase(
        "scaleUp with pod policy limitation",
        10,
        50,
        1,
        1000,
        40,
        "ScaleUpLimit",
        up=R(30, 60, 0, 0, 0),
    ),
    RulesCase(
        "scaleUp with percent policy limitation",
        10,
        50,
        1,
        1000,
        30,
        "ScaleUpLimit",
        up=R(0, 0, 200, 60, 0),
    ),
    RulesCase(
        "scaleDown with percent policy larger than pod policy",
        100,
        2,
        1,
        1000,
        80,
        "ScaleDownLimit",
        down=R(20, 60, 1, 60, 300),
    ),
    RulesCase(
        "scaleDown with pod policy larger than percent policy",
        100,
        2,
        1,
        1000,
        98,
        "ScaleDownLimit",
        down=R(2, 60, 1, 60, 300),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas=nil limitation with large pod policy",
        10,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=R(100, 60, 0, 0, 300),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas limitation with large pod policy",
        10,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=R(100, 60, 0, 0, 300),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas limitation with large percent policy",
        10,
        2,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=R(0, 0, 100, 60, 300),
    ),
    RulesCase(
        "scaleDown with pod policy limitation",
        10,
        2,
        1,
        1000,
        5,
        "ScaleDownLimit",
        down=R(5, 60, 0, 0, 300),
    ),
    RulesCase(
        "scaleDown with percent policy limitation",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=R(0, 0, 50, 60, 300),
    ),
    RulesCase(
        "scaleUp with spec MaxReplicas limitation with large pod policy and events",
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=R(300, 60, 0, 0, 0),
        up_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleUp with spec MaxReplicas limitation with large percent policy and events",
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=R(0, 0, 10000, 60, 0),
        up_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent "
        "scale up events",
        100,
        500,
        1,
        1000,
        100,
        "ScaleUpLimit",
        up=R(5, 120, 0, 0, 0),
        up_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleUp with pod policy and previous scale up events",
        100,
        500,
        1,
        1000,
        235,
        "ScaleUpLimit",
        up=R(150, 120, 0, 0, 0),
        up_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleUp with percent policy and previous scale up events",
        100,
        500,
        1,
        1000,
        255,
        "ScaleUpLimit",
        up=R(0, 0, 200, 120, 0),
        up_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleUp with percent policy and previous scale up and down events",
        6,
        24,
        1,
        1000,
        16,
        "ScaleUpLimit",
        up=R(0, 0, 300, 300, 0),
        up_events=((4,), 120),
        down_events=((2,), 120),
    ),
    RulesCase(
        "scaleDown with default policy and previous events",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
        100,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=R(115, 120, 0, 0, 300),
        down_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas limitation with large pod policy and previous events",
        100,
        0,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=R(130, 120, 0, 0, 300),
        down_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleDown with spec MinReplicas limitation with large percent policy and previous events",
        100,
        2,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=R(0, 0, 100, 120, 300),
        down_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleDown with pod policy limitation and previous events",
        100,
        2,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=R(5, 120, 0, 0, 300),
        down_events=((1, 5, 9), 120),
    ),
    RulesCase(
        "scaleDown with percent policy limitation and previous events",
        100,
        0,
        1,
        1000,
        56,
        "ScaleDownLimit",
        down=R(0, 0, 50, 120, 300),
        down_events=((2, 4, 6), 120),
    ),
    RulesCase(
        "scaleDown with percent policy and previous scale up and down events",
        10,
        1,
        1,
        1000,
        6,
        "ScaleDownLimit",
        down=R(0, 0, 50, 180, 0),
        up_events=((2,), 120),
        down_events=((4,), 120),
    ),
    RulesCase(
        "scaleDown with previous events preventing further scale down",
        100,
        0,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=R(0, 0, 10, 120, 300),
        down_events=((10, 10, 10), 120),
    ),
    RulesCase(
        "scaleDown with with previous events still allowing more scale down",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=R(0, 0, 1000, 120, 300),
        down_events=((10, 10, 10), 120),
    ),
    RulesCase(
        "check 'outdated' flag for events for one behavior for up",
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=R(1000, 60, 0, 0, 0),
        up_events=((8, 12, 9, 11), 120),
    ),
    RulesCase(
        "check that events were not marked 'outdated' for two different policies in the "
        "behavior for up",
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=R(1000, 120, 100, 60, 0),
        up_events=((8, 12, 9, 11), 120),
    ),
    RulesCase(
        "check that events were marked 'outdated' for two different policies in the behavior "
        "for up",
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=R(1000, 30, 100, 60, 0),
        up_events=((8, 12, 9, 11), 120),
    ),
    RulesCase(
        "check 'outdated' flag for events for one behavior for down",
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=R(1000, 60, 0, 0, 300),
        down_events=((8, 12, 9, 11), 120),
    ),
    RulesCase(
        "check that events were not marked 'outdated' for two different policies in the "
        "behavior for down",
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=R(1000, 120, 100, 60, 300),
        down_events=((8, 12, 9, 11), 120),
    ),
    RulesCase(
        "check that events were marked 'outdated' for two different policies in the behavior "
        "for down",
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=R(1000, 30, 100, 60, 300),
        down_events=((8, 12, 9, 11), 120),
    ),
]


def _events(spec: tuple[tuple[int, ...], int] | None) -> list[ScaleEvent]:
    return [] if spec is None else generate_events_uniform_distribution(list(spec[0]), spec[1])


@pytest.mark.parametrize("case", SCALING_WITH_RULES, ids=[c.name for c in SCALING_WITH_RULES])
def test_scaling_with_rules(case: RulesCase) -> None:
    args = NormalizationArg(
        scale_up=generate_scale_up_rules(case.up),
        scale_down=generate_scale_down_rules(case.down),
        min_replicas=case.low,
        max_replicas=case.high,
        current_replicas=case.current,
        desired_replicas=case.desired,
    )
    got = convert_desired_replicas_with_behavior_rate(
        args, _events(case.up_events), _events(case.down_events), now=NOW
    )
    assert got == (case.expected, case.condition)


# --- TestNormalizeDesiredReplicasWithBehavior ---------------------------------------------


def _recs(*pairs: tuple[int, float]) -> list[Recommendation]:
    """(recommendation, minutes ago) pairs."""
    return [Recommendation(value, NOW - minutes * MINUTE) for value, minutes in pairs]


WITH_BEHAVIOR = [
    # name, recommendations, current, desired, expected, stored values, up window, down window
    ("empty recommendations for scaling down", [], 100, 5, 5, [5], 0, 0),
    ("simple scale down stabilization", [(4, 2), (5, 1)], 100, 3, 5, [4, 5, 3], 0, 180),
    ("simple scale up stabilization", [(4, 2), (5, 1)], 1, 7, 4, [4, 5, 7], 300, 0),
    ("no scale down stabilization", [(1, 2), (2, 1)], 100, 3, 3, [1, 2, 3], 300, 0),
    ("no scale up stabilization", [(4, 2), (5, 1)], 1, 3, 3, [4, 5, 3], 0, 300),
    (
        "no scale down stabilization, reuse recommendation element",
        [(10, 10), (9, 9)],
        100,
        3,
        3,
        [10, 3],
        0,
        0,
    ),
    (
        "no scale up stabilization, reuse recommendation element",
        [(10, 10), (9, 9)],
        1,
        100,
        100,
        [10, 100],
        0,
        0,
    ),
    (
        "scale down stabilization, reuse one of obsolete recommendation element",
        [(10, 10), (4, 1), (5, 2), (9, 9)],
        100,
        3,
        5,
        [10, 4, 5, 3],
        0,
        180,
    ),
    (
        "scale up stabilization, reuse one of obsolete recommendation element",
        [(10, 100), (6, 1), (5, 2), (9, 3)],
        1,
        100,
        5,
        [100, 6, 5, 9],
        300,
        0,
    ),
    (
        "scale up and down stabilization, do not scale up when prenormalized rec goes down",
        [(2, 100), (3, 3)],
        2,
        1,
        2,
        None,
        300,
        300,
    ),
    (
        "scale up and down stabilization, do not scale down when prenormalized rec goes up",
        [(2, 100), (1, 3)],
        2,
        3,
        2,
        None,
        300,
        300,
    ),
]


@pytest.mark.parametrize(
    ("recommendations", "current", "desired", "expected", "stored", "up", "down"),
    [case[1:] for case in WITH_BEHAVIOR],
    ids=[case[0] for case in WITH_BEHAVIOR],
)
def test_normalize_desired_replicas_with_behavior(
    recommendations: list[tuple[int, float]],
    current: int,
    desired: int,
    expected: int,
    stored: list[int] | None,
    up: int,
    down: int,
) -> None:
    recs = _recs(*recommendations)
    args = NormalizationArg(
        scale_up=ScalingRules(up, "Max", ()),
        scale_down=ScalingRules(down, "Max", ()),
        min_replicas=0,
        max_replicas=0,
        current_replicas=current,
        desired_replicas=desired,
    )
    got, _ = stabilize_recommendation_with_behaviors(recs, args, now=NOW)
    assert got == expected
    if stored is not None:
        assert [r.recommendation for r in recs] == stored


# --- TestNormalizeDesiredReplicas (the legacy path's stabilisation) -----------------------

LEGACY = [
    # name, recommendations, prenormalized, expected, log length
    ("empty log", [], 5, 5, 1),
    ("stabilize", [(4, 2), (5, 1)], 3, 5, 3),
    ("no stabilize", [(1, 2), (2, 1)], 3, 3, 3),
    ("no stabilize - old recommendations", [(10, 10), (9, 9)], 3, 3, 2),
    ("stabilize - old recommendations", [(10, 10), (4, 1), (5, 2), (9, 9)], 3, 5, 4),
]


@pytest.mark.parametrize(
    ("recommendations", "prenormalized", "expected", "length"),
    [case[1:] for case in LEGACY],
    ids=[case[0] for case in LEGACY],
)
def test_normalize_desired_replicas(
    recommendations: list[tuple[int, float]], prenormalized: int, expected: int, length: int
) -> None:
    recs = _recs(*recommendations)
    assert stabilize_recommendation(recs, prenormalized, now=NOW, window=5 * MINUTE) == expected
    assert len(recs) == length


# --- TestScaleDownStabilizeInitialSize ----------------------------------------------------


def test_scale_down_stabilize_initial_size() -> None:
    # Upstream: 5 pods at 100, 300, 500, 250 and 250 millicores of 1 core requested, a
    # 50 % CPU target, no recommendations yet: the metrics propose 3 (ceil(0.56 x 5)), and
    # the window, seeded with the current 5 on the first sync, keeps 5. The same proposal
    # from an External AverageValue metric: a total of 1.4 against 0.5 per pod.
    spec = HpaSpec(
        min_replicas=2, max_replicas=6, metrics=(ExternalMetric("cpu", AverageValue(0.5)),)
    )
    controller = HorizontalController(spec)
    scale = Scale(spec_replicas=5, status_replicas=5, ready_replicas=5)
    assert controller.reconcile(now=NOW, scale=scale, values={"cpu": 1.4}) == 5
    # Past the 5-minute window the proposal of 3 applies (the legacy path, no behavior).
    later = NOW + 5 * MINUTE + 1
    assert controller.reconcile(now=later, scale=scale, values={"cpu": 1.4}) == 3


def test_scale_down_stabilize_initial_size_with_behavior() -> None:
    # The same seed of the window on the behavior path.
    spec = HpaSpec(
        min_replicas=2,
        max_replicas=6,
        metrics=(ExternalMetric("cpu", AverageValue(0.5)),),
        behavior=Behavior(),
    )
    controller = HorizontalController(spec)
    scale = Scale(spec_replicas=5, status_replicas=5, ready_replicas=5)
    assert controller.reconcile(now=NOW, scale=scale, values={"cpu": 1.4}) == 5


# --- replica_calculator_test.go: External metrics -----------------------------------------


@pytest.mark.parametrize(
    ("current", "levels", "target", "expected", "tolerances"),
    [
        pytest.param(1, 8600, 4400, 2, Tolerances(), id="TestReplicaCalcScaleUpCMExternal"),
        pytest.param(5, 8600, 14334, 3, Tolerances(), id="TestReplicaCalcScaleDownCMExternal"),
        pytest.param(3, 8600, 8888, 3, Tolerances(), id="TestReplicaCalcToleranceCMExternal"),
        pytest.param(
            3,
            8900,
            8800,
            4,
            Tolerances(0.1, 0.01),
            id="TestReplicaCalcConfigurableToleranceCMExternal",
        ),
    ],
)
def test_external_value_metric_replica_cases(
    current: int, levels: int, target: int, expected: int, tolerances: Tolerances
) -> None:
    got = get_external_metric_replicas(
        current_replicas=current,
        target=target,
        usages=[levels],
        ready_replicas=current,
        tolerances=tolerances,
    )
    assert got == expected


def test_replica_calc_scale_up_cm_external_ignores_unready_pods() -> None:
    # 3 pods, 1 ready: ceil(8600 / 4400 x 1) = 2, "would expect 6 if we didn't ignore unready".
    got = get_external_metric_replicas(
        current_replicas=3, target=4400, usages=[8600], ready_replicas=1, tolerances=Tolerances()
    )
    assert got == 2


@pytest.mark.parametrize(
    ("current", "levels", "per_pod", "expected", "usage", "tolerances"),
    [
        pytest.param(
            3, 8600, 2150, 4, 2867, Tolerances(), id="TestReplicaCalcScaleUpPerPodCMExternal"
        ),
        pytest.param(
            5, 8600, 2867, 3, 1720, Tolerances(), id="TestReplicaCalcScaleDownPerPodCMExternal"
        ),
        pytest.param(
            3, 8600, 2900, 3, 2867, Tolerances(), id="TestReplicaCalcTolerancePerPodCMExternal"
        ),
        pytest.param(
            3,
            8600,
            2800,
            4,
            2867,
            Tolerances(0.1, 0.01),
            id="TestReplicaCalcConfigurableTolerancePerPodCMExternal",
        ),
        pytest.param(
            1,
            2**63 - 1,
            1,
            2**31 - 1,
            2**63 - 1,
            Tolerances(),
            id="TestExternalPerPodMetricReplicaOverflow",
        ),
        pytest.param(
            1,
            2**63 - 1,
            2**63 - 1,
            1,
            2**63 - 1,
            Tolerances(),
            id="TestExternalPerPodMetricUsageOverflow",
        ),
    ],
)
def test_external_per_pod_metric_replica_cases(
    current: int, levels: int, per_pod: int, expected: int, usage: int, tolerances: Tolerances
) -> None:
    got = get_external_per_pod_metric_replicas(
        status_replicas=current, target_per_pod=per_pod, usages=[levels], tolerances=tolerances
    )
    assert got == (expected, usage)
