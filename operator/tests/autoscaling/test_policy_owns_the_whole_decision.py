"""The Decision is the whole outcome: bounds, disabled, paused, a missing signal, a fallback.

The loop only carries it out and reports it, so each of these is decided here once.
"""

from __future__ import annotations

from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import ApiSample, Replicas, SignalHistory, WorkerSample
from retention_operator.autoscaling.state import PolicyState


def _empty() -> SignalHistory[WorkerSample]:
    return SignalHistory()


def test_disabled_only_brings_replicas_within_the_bounds() -> None:
    config = WorkerPolicyConfig(enabled=False, min_replicas=2, max_replicas=5)
    low = decide_workers(now=0.0, replicas=Replicas(1, 1), history=_empty(), config=config)
    assert (low.desired, low.kind, low.direction) == (2, "Disabled", "up")
    high = decide_workers(now=0.0, replicas=Replicas(9, 9), history=_empty(), config=config)
    assert (high.desired, high.kind) == (5, "Disabled")
    within = decide_workers(now=0.0, replicas=Replicas(3, 3), history=_empty(), config=config)
    assert (within.desired, within.kind, within.missing) == (3, "Disabled", None)


def test_paused_keeps_even_replicas_out_of_bounds() -> None:
    config = WorkerPolicyConfig(min_replicas=2, max_replicas=5)
    decision = decide_workers(
        now=0.0, replicas=Replicas(9, 9), history=_empty(), config=config, paused=True
    )
    assert (decision.desired, decision.kind) == (9, "Paused")


def test_a_missing_signal_is_named_and_a_fallback_says_so() -> None:
    config = WorkerPolicyConfig(fallback_replicas=4, fallback_after_failed_ticks=2)
    first = decide_workers(now=0.0, replicas=Replicas(2, 2), history=_empty(), config=config)
    assert (first.kind, first.missing, first.desired) == ("Hold", "queue backlog", 2)
    second = decide_workers(
        now=5.0, replicas=Replicas(2, 2), history=_empty(), config=config, state=first.state
    )
    assert (second.kind, second.missing, second.desired) == ("Fallback", "queue backlog", 4)


def test_a_fallback_equal_to_the_minimum_is_a_bound_not_a_fallback() -> None:
    # Below the minimum with no data: raised to the minimum, which happens to equal the
    # fallback; it is a scale up within bounds, not the fallback.
    config = WorkerPolicyConfig(min_replicas=3, fallback_replicas=3)
    decision = decide_workers(now=0.0, replicas=Replicas(1, 1), history=_empty(), config=config)
    assert (decision.desired, decision.kind) == (3, "ScaleUp")


def test_fresh_signals_are_not_missing() -> None:
    history: SignalHistory[ApiSample] = SignalHistory()
    history.append(ApiSample(at=0.0, p95_ms=50.0, rps=300.0))
    decision = decide_api(
        now=1.0, replicas=Replicas(2, 2), history=history, config=ApiPolicyConfig()
    )
    assert decision.missing is None
    assert decision.state.failed_ticks == 0
    assert decision.kind == "Hold"
    assert decision.state != PolicyState()
