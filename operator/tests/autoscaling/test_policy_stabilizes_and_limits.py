"""Scale-down waits for the stabilization window (over demand); scale-up is rate-limited."""

from __future__ import annotations

from retention_operator.autoscaling.config import ScaleUpLimit
from retention_operator.autoscaling.limits import clamp, hold_highest, limit_scale_up, replicas_for


def test_the_window_holds_the_highest_demand_of_its_span() -> None:
    value, kept = hold_highest(
        now=220.0, value=200.0, window=120, memory=((90.0, 900.0), (150.0, 500.0))
    )
    assert value == 500.0
    assert kept == ((150.0, 500.0), (220.0, 200.0))


def test_replicas_carry_the_demand_with_the_slack_left_uncovered() -> None:
    assert replicas_for(450.0, 100.0) == 5
    assert replicas_for(405.0, 100.0, slack=0.1) == 4
    assert replicas_for(0.0, 100.0) == 0


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
