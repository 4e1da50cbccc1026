"""Capacity on its way is not asked for twice: the policy compares with desired, not ready."""

from __future__ import annotations

from retention_operator.autoscaling.config import WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_workers
from retention_operator.autoscaling.samples import Replicas, SignalHistory, WorkerSample


def test_pods_starting_already_cover_the_need() -> None:
    history: SignalHistory[WorkerSample] = SignalHistory()
    for t in range(0, 65, 5):
        history.append(WorkerSample(float(t), 0.0, 350.0 * t, 100.0 * t))
    # 350 jobs/s need 4 workers; 4 are desired, 1 is ready and 3 are starting.
    decision = decide_workers(
        now=60.0,
        replicas=Replicas(desired=4, ready=1),
        history=history,
        config=WorkerPolicyConfig(max_replicas=20),
    )
    assert decision.desired == 4
    assert decision.direction == "none"
