"""Whole syncs of the simulator's HPA: the path without ``spec.behavior``, the one with it,
the documentation's examples, and what a missing metric does (horizontal.go, v1.34.4)."""

from __future__ import annotations

from bench.autoscaling.hpa import (
    DOCUMENTED_DEFAULTS,
    AverageValue,
    Behavior,
    ExternalMetric,
    HorizontalController,
    HpaSpec,
    Scale,
    ScalingPolicy,
    ScalingRulesSpec,
)

RPS = ExternalMetric("rps", AverageValue(100.0))


def _controller(behavior: Behavior | None = None, **kw: int) -> HorizontalController:
    bounds = {"min_replicas": 1, "max_replicas": 100, **kw}
    return HorizontalController(HpaSpec(metrics=(RPS,), behavior=behavior, **bounds))


def _sync(controller: HorizontalController, now: float, replicas: int, rps: float | None) -> int:
    scale = Scale(spec_replicas=replicas, status_replicas=replicas, ready_replicas=replicas)
    return controller.reconcile(now=now, scale=scale, values={"rps": rps})


def test_without_behavior_scale_up_is_capped_at_twice_or_four() -> None:
    assert _sync(_controller(), 0.0, 2, 5000.0) == 4  # max(2 x 2, 4)
    assert _sync(_controller(), 0.0, 10, 5000.0) == 20
    # The documented defaults written out allow max(+4 pods, +100 %): one step further.
    assert _sync(_controller(DOCUMENTED_DEFAULTS), 0.0, 2, 5000.0) == 6


def test_without_behavior_the_window_keeps_the_highest_recommendation_even_above() -> None:
    controller = _controller()
    assert _sync(controller, 0.0, 2, 1000.0) == 4  # 10 asked, capped at 4
    # 10 is still the highest recommendation of the window: the next sync asks for it
    # again, though the metric now proposes 6.
    assert _sync(controller, 15.0, 4, 600.0) == 8
    assert _sync(controller, 30.0, 8, 600.0) == 10


def test_with_behavior_the_window_holds_only_scale_downs() -> None:
    controller = _controller(DOCUMENTED_DEFAULTS)
    assert _sync(controller, 0.0, 2, 1000.0) == 6
    assert _sync(controller, 15.0, 6, 600.0) == 6


def test_the_first_sync_never_scales_down_for_a_window() -> None:
    for behavior in (None, DOCUMENTED_DEFAULTS):
        controller = _controller(behavior)
        assert _sync(controller, 0.0, 8, 100.0) == 8
        assert _sync(controller, 299.0, 8, 100.0) == 8
        assert _sync(controller, 301.0, 8, 100.0) == 1


def test_scale_down_policy_example_from_the_docs() -> None:
    # "if there are 80 replicas and the target has to be scaled down to 10 replicas then
    # during the first step 8 replicas will be reduced. In the next iteration when the
    # number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8."
    down = ScalingRulesSpec(
        stabilization_window_seconds=0,
        policies=(
            ScalingPolicy(type="Pods", value=4, period_seconds=60),
            ScalingPolicy(type="Percent", value=10, period_seconds=60),
        ),
    )
    controller = _controller(Behavior(scale_down=down))
    controller.recommendations = []
    assert _sync(controller, 0.0, 80, 1000.0) == 72
    assert _sync(controller, 61.0, 72, 1000.0) == 64


def test_a_missing_metric_holds() -> None:
    controller = _controller()
    assert _sync(controller, 0.0, 4, None) == 4
    assert _sync(controller, 400.0, 4, None) == 4


def test_replicas_outside_the_bounds_come_inside_first_and_zero_disables() -> None:
    assert _sync(_controller(min_replicas=2, max_replicas=5), 0.0, 9, 100.0) == 5
    assert _sync(_controller(min_replicas=2, max_replicas=5), 0.0, 1, 100.0) == 2
    assert _sync(_controller(), 0.0, 0, 5000.0) == 0
