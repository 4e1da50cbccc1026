"""With scaleToZero, workers go to zero on a quiet queue and wake at the activation backlog."""

from __future__ import annotations

from retention_operator.autoscaling.config import WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_workers
from retention_operator.autoscaling.samples import Replicas, SignalHistory, WorkerSample
from retention_operator.autoscaling.state import PolicyState

CONFIG = WorkerPolicyConfig(
    min_replicas=0, scale_to_zero=True, activation_backlog=10, scale_down_stabilization_seconds=60
)


def _flat(backlog: float, *, rate: float = 0.0) -> SignalHistory[WorkerSample]:
    history: SignalHistory[WorkerSample] = SignalHistory()
    for t in range(0, 125, 5):
        history.append(WorkerSample(float(t), backlog, rate * t, rate * t))
    return history


def test_idle_queue_goes_to_zero_after_the_window() -> None:
    state: PolicyState | None = None
    desired = 1
    for now in range(0, 125, 5):
        decision = decide_workers(
            now=float(now),
            replicas=Replicas(desired=desired, ready=desired),
            history=_flat(0.0),
            config=CONFIG,
            state=state,
        )
        state, desired = decision.state, decision.desired
        if now < 60:
            assert desired == 1
    assert desired == 0


def test_a_backlog_below_activation_stays_at_zero() -> None:
    decision = decide_workers(
        now=120.0, replicas=Replicas(desired=0, ready=0), history=_flat(5.0), config=CONFIG
    )
    assert decision.desired == 0


def test_the_activation_backlog_wakes_the_workers() -> None:
    decision = decide_workers(
        now=120.0, replicas=Replicas(desired=0, ready=0), history=_flat(10.0), config=CONFIG
    )
    assert decision.desired >= 1


def test_without_scale_to_zero_one_worker_stays() -> None:
    decision = decide_workers(
        now=120.0,
        replicas=Replicas(desired=1, ready=1),
        history=_flat(0.0),
        config=WorkerPolicyConfig(scale_down_stabilization_seconds=0),
    )
    assert decision.desired == 1
