"""Missing or stale signals hold the replicas: never a scale-down, a fallback only upwards."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import PolicyState


def _workers(*samples: WorkerSample) -> SignalHistory[WorkerSample]:
    history: SignalHistory[WorkerSample] = SignalHistory()
    for sample in samples:
        history.append(sample)
    return history


def test_no_samples_at_all_holds() -> None:
    decision = decide_workers(
        now=100.0,
        replicas=Replicas(desired=7, ready=7),
        history=_workers(),
        config=WorkerPolicyConfig(),
    )
    assert decision.desired == 7
    assert decision.direction == "none"
    assert "never scales down" in decision.reason


def test_a_stale_sample_holds_even_if_it_says_the_queue_is_empty() -> None:
    history = _workers(WorkerSample(at=0.0, backlog=0, arrivals_total=0, completed_total=0))
    decision = decide_workers(
        now=100.0,
        replicas=Replicas(desired=7, ready=7),
        history=history,
        config=WorkerPolicyConfig(stale_after_seconds=20),
    )
    assert decision.desired == 7


def test_prometheus_returning_nothing_holds_the_api() -> None:
    history: SignalHistory[ApiSample] = SignalHistory()
    history.append(ApiSample(at=95.0, p95_ms=None, rps=None))
    decision = decide_api(
        now=100.0,
        replicas=Replicas(desired=9, ready=9),
        history=history,
        config=ApiPolicyConfig(max_replicas=50),
    )
    assert decision.desired == 9


def test_fallback_applies_after_the_failed_ticks_and_only_raises() -> None:
    config = WorkerPolicyConfig(fallback_replicas=6, fallback_after_failed_ticks=3)
    state: PolicyState | None = None
    desired = []
    for tick in range(4):
        decision = decide_workers(
            now=float(tick * 5),
            replicas=Replicas(desired=2, ready=2),
            history=_workers(),
            config=config,
            state=state,
        )
        state = decision.state
        desired.append(decision.desired)
    assert desired == [2, 2, 6, 6]
    higher = decide_workers(
        now=30.0,
        replicas=Replicas(desired=9, ready=9),
        history=_workers(),
        config=config,
        state=state,
    )
    assert higher.desired == 9


def test_a_good_sample_resets_the_failed_ticks() -> None:
    decision = decide_workers(
        now=10.0,
        replicas=Replicas(desired=2, ready=2),
        history=_workers(WorkerSample(at=10.0, backlog=0, arrivals_total=0, completed_total=0)),
        config=WorkerPolicyConfig(),
        state=PolicyState(failed_ticks=5),
    )
    assert decision.state.failed_ticks == 0


@given(
    desired=st.integers(min_value=1, max_value=20),
    age=st.floats(min_value=21, max_value=10_000),
    backlog=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    failed=st.integers(min_value=0, max_value=50),
    fallback=st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
)
def test_missing_or_stale_data_never_scales_down(
    desired: int, age: float, backlog: float | None, failed: int, fallback: int | None
) -> None:
    config = WorkerPolicyConfig(
        min_replicas=1, max_replicas=20, fallback_replicas=fallback, stale_after_seconds=20
    )
    history = _workers(WorkerSample(at=0.0, backlog=backlog, arrivals_total=0, completed_total=0))
    decision = decide_workers(
        now=age,
        replicas=Replicas(desired=desired, ready=desired),
        history=history,
        config=config,
        state=PolicyState(failed_ticks=failed),
    )
    assert decision.desired >= desired
    assert decision.direction != "down"
