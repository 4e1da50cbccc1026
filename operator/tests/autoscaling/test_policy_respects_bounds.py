"""Whatever the signals, the decision lies within [minReplicas, maxReplicas]."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)

values = st.one_of(st.none(), st.floats(min_value=0, max_value=1e7, allow_nan=False))


@settings(max_examples=200)
@given(
    low=st.integers(min_value=1, max_value=10),
    span=st.integers(min_value=0, max_value=40),
    desired=st.integers(min_value=0, max_value=80),
    ready=st.integers(min_value=0, max_value=80),
    samples=st.lists(st.tuples(values, values, values), min_size=0, max_size=8),
)
def test_workers_stay_within_bounds(
    low: int,
    span: int,
    desired: int,
    ready: int,
    samples: list[tuple[float | None, float | None, float | None]],
) -> None:
    config = WorkerPolicyConfig(min_replicas=low, max_replicas=low + span)
    history: SignalHistory[WorkerSample] = SignalHistory()
    for index, (backlog, arrivals, completed) in enumerate(samples):
        history.append(WorkerSample(index * 5.0, backlog, arrivals, completed))
    decision = decide_workers(
        now=len(samples) * 5.0,
        replicas=Replicas(desired=desired, ready=min(ready, desired)),
        history=history,
        config=config,
    )
    assert low <= decision.desired <= low + span


@settings(max_examples=200)
@given(
    low=st.integers(min_value=1, max_value=10),
    span=st.integers(min_value=0, max_value=40),
    desired=st.integers(min_value=0, max_value=80),
    samples=st.lists(st.tuples(values, values), min_size=0, max_size=8),
)
def test_api_stays_within_bounds(
    low: int, span: int, desired: int, samples: list[tuple[float | None, float | None]]
) -> None:
    config = ApiPolicyConfig(min_replicas=low, max_replicas=low + span)
    history: SignalHistory[ApiSample] = SignalHistory()
    for index, (p95, rps) in enumerate(samples):
        history.append(ApiSample(index * 15.0, p95, rps))
    decision = decide_api(
        now=len(samples) * 15.0,
        replicas=Replicas(desired=desired, ready=desired),
        history=history,
        config=config,
    )
    assert low <= decision.desired <= low + span
