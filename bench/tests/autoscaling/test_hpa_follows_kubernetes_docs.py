"""The HPA baseline reproduces the examples of the Kubernetes HPA documentation."""

from __future__ import annotations

from bench.autoscaling.hpa import (
    AverageValueTarget,
    HpaConfig,
    HpaScalingPolicy,
    HpaScalingRules,
    HpaState,
    MetricReading,
    ValueTarget,
    hpa_sync,
    replicas_for_average_value,
    replicas_for_value,
)


def _sync(current: int, value: float | None, *, target: float = 100.0, **kw: object) -> int:
    config = kw.pop("config", HpaConfig(min_replicas=1, max_replicas=100))
    state = kw.pop("state", HpaState())
    decision = hpa_sync(
        now=1000.0,
        spec_replicas=current,
        status_replicas=current,
        ready_replicas=current,
        readings=[MetricReading(ValueTarget(target), value)],
        config=config,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
    )
    return decision.desired


def test_ratio_doubles_at_twice_the_target() -> None:
    # "if the current metric value is 200m, and the desired value is 100m, the number
    # of replicas will be doubled"
    assert replicas_for_value(value=200, target=100, current=3, ready=3) == 6


def test_ratio_halves_at_half_the_target_after_the_window() -> None:
    # "If the current value is instead 50m, you'll halve the number of replicas"
    assert replicas_for_value(value=50, target=100, current=4, ready=4) == 2


def test_no_change_within_the_tolerance() -> None:
    assert replicas_for_value(value=109, target=100, current=4, ready=4) == 4
    assert replicas_for_value(value=91, target=100, current=4, ready=4) == 4
    assert replicas_for_value(value=111, target=100, current=4, ready=4) == 5


def test_value_metrics_scale_the_ready_pods() -> None:
    assert replicas_for_value(value=300, target=100, current=6, ready=2) == 6


def test_average_value_divides_the_total_by_the_target() -> None:
    assert replicas_for_average_value(total=9000, target=3000, status_replicas=1) == 3
    assert replicas_for_average_value(total=6200, target=3000, status_replicas=2) == 2


def test_default_scale_up_adds_four_pods_or_doubles_per_period() -> None:
    # "4 pods or a 100% of the currently running replicas may at most be added every 15 s"
    assert _sync(2, 1000.0) == 6
    assert _sync(10, 1000.0) == 20


def test_scale_up_within_a_period_counts_earlier_events() -> None:
    state = HpaState(scale_up_events=((995.0, 4),))
    # The period started at 2 replicas: at most max(2 + 4, 2 * 2) = 6 until it ends.
    assert _sync(6, 1000.0, state=state) == 6


def test_default_scale_down_takes_the_highest_recommendation_of_five_minutes() -> None:
    state = HpaState(recommendations=((800.0, 8), (900.0, 5)))
    assert _sync(10, 10.0, state=state) == 8
    old = HpaState(recommendations=((600.0, 8),))
    assert _sync(10, 10.0, state=old) == 1


def test_scale_down_policy_example_from_the_docs() -> None:
    # "if there are 80 replicas and the target has to be scaled down to 10 replicas then
    # during the first step 8 replicas will be reduced. In the next iteration when the
    # number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8."
    rules = HpaScalingRules(
        stabilization_window_seconds=0,
        policies=(
            HpaScalingPolicy(type="Pods", value=4, period_seconds=60),
            HpaScalingPolicy(type="Percent", value=10, period_seconds=60),
        ),
    )
    config = HpaConfig(min_replicas=1, max_replicas=100, scale_down=rules)
    first = hpa_sync(
        now=0.0,
        spec_replicas=80,
        status_replicas=80,
        ready_replicas=80,
        readings=[MetricReading(AverageValueTarget(100), 1000.0)],
        config=config,
        state=HpaState(),
    )
    assert first.desired == 72
    second = hpa_sync(
        now=61.0,
        spec_replicas=72,
        status_replicas=72,
        ready_replicas=72,
        readings=[MetricReading(AverageValueTarget(100), 1000.0)],
        config=config,
        state=first.state,
    )
    assert second.desired == 64


def test_a_missing_metric_blocks_a_scale_down_but_not_a_scale_up() -> None:
    readings = [MetricReading(ValueTarget(100), 10.0), MetricReading(ValueTarget(100), None)]
    config = HpaConfig(min_replicas=1, max_replicas=100)
    down = hpa_sync(
        now=0.0,
        spec_replicas=4,
        status_replicas=4,
        ready_replicas=4,
        readings=readings,
        config=config,
        state=HpaState(),
    )
    assert down.desired == 4
    readings[0] = MetricReading(ValueTarget(100), 200.0)
    up = hpa_sync(
        now=0.0,
        spec_replicas=4,
        status_replicas=4,
        ready_replicas=4,
        readings=readings,
        config=config,
        state=HpaState(),
    )
    assert up.desired == 8


def test_replicas_outside_the_bounds_come_inside_first() -> None:
    config = HpaConfig(min_replicas=2, max_replicas=5)
    assert _sync(9, 100.0, config=config) == 5
    assert _sync(1, 100.0, config=config) == 2


def test_zero_replicas_disable_scaling() -> None:
    assert _sync(0, 1000.0, config=HpaConfig(min_replicas=1, max_replicas=10)) == 0
