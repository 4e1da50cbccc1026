"""Paused (spec.paused or the annotation) or disabled autoscaling leaves replicas alone."""

from __future__ import annotations

from retention_operator import names
from retention_operator.autoscaling.config import WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_workers, is_paused
from retention_operator.autoscaling.samples import Replicas, SignalHistory, WorkerSample


def _busy() -> SignalHistory[WorkerSample]:
    history: SignalHistory[WorkerSample] = SignalHistory()
    for t in range(0, 35, 5):
        history.append(WorkerSample(float(t), 1e6, 1000.0 * t, 100.0 * t))
    return history


def test_paused_keeps_replicas_even_outside_bounds() -> None:
    decision = decide_workers(
        now=30.0,
        replicas=Replicas(desired=50, ready=50),
        history=_busy(),
        config=WorkerPolicyConfig(max_replicas=10),
        paused=True,
    )
    assert decision.desired == 50
    assert "paused" in decision.reason


def test_disabled_keeps_replicas() -> None:
    decision = decide_workers(
        now=30.0,
        replicas=Replicas(desired=1, ready=1),
        history=_busy(),
        config=WorkerPolicyConfig(enabled=False),
    )
    assert decision.desired == 1
    assert decision.reason == "Kept the workers at 1 replica: autoscaling is disabled."


def test_pause_comes_from_spec_or_annotation() -> None:
    assert is_paused(spec_paused=True, annotations={})
    assert is_paused(spec_paused=False, annotations={names.ANNOTATION_AUTOSCALING_PAUSED: "true"})
    assert not is_paused(
        spec_paused=False, annotations={names.ANNOTATION_AUTOSCALING_PAUSED: "false"}
    )
