"""Scale-down waits for the stabilization window; scale-up is rate-limited per period."""

from __future__ import annotations

from retention_operator.autoscaling.config import ScaleUpLimit
from retention_operator.autoscaling.limits import clamp, limit_scale_up, stabilize_down


def test_scale_down_goes_only_to_the_highest_recommendation_of_the_window() -> None:
    value, kept = stabilize_down(
        now=220.0, recommendation=2, current=6, window=120, recommendations=((90.0, 9), (150.0, 5))
    )
    assert value == 5
    assert kept == ((150.0, 5), (220.0, 2))


def test_scale_up_is_not_stabilized() -> None:
    value, _ = stabilize_down(
        now=0.0, recommendation=8, current=3, window=120, recommendations=((-10.0, 2),)
    )
    assert value == 8


def test_scale_up_limit_is_the_larger_of_percent_and_pods() -> None:
    limit = ScaleUpLimit(percent=100, pods=4, period_seconds=15)
    assert limit_scale_up(now=0.0, desired=50, current=2, limit=limit, scale_ups=())[0] == 6
    assert limit_scale_up(now=0.0, desired=50, current=10, limit=limit, scale_ups=())[0] == 20


def test_scale_up_limit_counts_the_period_so_far() -> None:
    limit = ScaleUpLimit(percent=100, pods=4, period_seconds=15)
    value, kept = limit_scale_up(
        now=10.0, desired=50, current=6, limit=limit, scale_ups=((0.0, 4),)
    )
    assert value == 6
    value, _ = limit_scale_up(now=16.0, desired=50, current=6, limit=limit, scale_ups=kept)
    assert value == 12


def test_clamp_prefers_the_minimum_when_bounds_cross() -> None:
    assert clamp(5, low=3, high=10) == 5
    assert clamp(0, low=3, high=10) == 3
    assert clamp(11, low=3, high=10) == 10
