"""The API's learning tells "more replicas would not help" from "too few replicas".

Too few replicas: over the target at a load near or past the capacity; the capacity
comes down and the fleet grows. A shared bottleneck (a database they all use): over the
target again after the fleet grew and each replica carries clearly less, at a load the
replicas took under target before, with no better latency. Then the capacity goes back
to the trusted one and no replica is added for the latency.
"""

from __future__ import annotations

from retention_operator.autoscaling import api
from retention_operator.autoscaling.config import ApiPolicyConfig
from retention_operator.autoscaling.policy import decide_api
from retention_operator.autoscaling.samples import ApiSample, Replicas, SignalHistory
from retention_operator.autoscaling.state import PolicyState

TARGET = 200.0


def _knee(capacity: float) -> api.Learned:
    """Learned from a sample on the knee: trusted at ``capacity``."""
    learned = api.Learned(capacity=None)
    return api.learn(learned, load=0.9 * capacity, p95_ms=0.55 * TARGET, target_ms=TARGET)


def test_latency_that_follows_the_replicas_lowers_the_capacity() -> None:
    learned = _knee(180.0)
    first = api.learn(learned, load=170.0, p95_ms=600.0, target_ms=TARGET)
    assert not first.bottleneck and first.capacity is not None
    assert first.capacity < learned.capacity  # type: ignore[operator]
    # More replicas, and the latency came down: the replicas were the cause.
    second = api.learn(first, load=120.0, p95_ms=250.0, target_ms=TARGET)
    assert not second.bottleneck


def test_latency_that_more_replicas_did_not_help_is_a_shared_bottleneck() -> None:
    learned = _knee(180.0)
    first = api.learn(learned, load=150.0, p95_ms=900.0, target_ms=TARGET)
    second = api.learn(first, load=110.0, p95_ms=950.0, target_ms=TARGET)
    assert second.bottleneck
    assert second.capacity == learned.trusted
    # It stays one while the latency does not get better, and ends once under target.
    third = api.learn(second, load=100.0, p95_ms=940.0, target_ms=TARGET)
    assert third.bottleneck
    assert not api.learn(third, load=100.0, p95_ms=120.0, target_ms=TARGET).bottleneck


def test_a_deep_overload_before_any_trusted_capacity_is_never_blamed_elsewhere() -> None:
    learned = api.Learned(capacity=100.0)
    first = api.learn(learned, load=90.0, p95_ms=30_000.0, target_ms=TARGET)
    second = api.learn(first, load=60.0, p95_ms=30_000.0, target_ms=TARGET)
    assert not second.bottleneck


def test_a_bottleneck_stops_the_policy_adding_replicas_for_latency() -> None:
    history: SignalHistory[ApiSample] = SignalHistory()
    history.append(ApiSample(at=100.0, p95_ms=950.0, rps=1100.0, rps_recent=1100.0))
    learned = api.Learned(
        capacity=180.0, trusted=180.0, confirmed=True, over=(150.0, 900.0), bottleneck=False
    )
    state = PolicyState(capacity=180.0, learned=learned, ready=10, ready_since=0.0)
    decision = decide_api(
        now=100.0,
        replicas=Replicas(desired=10, ready=10),
        history=history,
        config=ApiPolicyConfig(max_replicas=50, scale_down_stabilization_seconds=0),
        state=state,
    )
    # 1100 req/s at 180 per replica need 7 at 0.88; no drain of the "queue" on top.
    assert decision.state.learned is not None and decision.state.learned.bottleneck
    assert decision.desired <= 10
    assert "would not bring down" in decision.reason
