"""After a single surge the surge memory holds capacity for the stack's own
``scaleDownStabilizationSeconds``, not for a span of its own, for the API and the
workers alike: a short window the spec chose brings the workers back as soon after a
surge as after any fall in demand, and a long one holds the API's peak past an HPA's
default 300 s.

The replay is the shape of
``e2e/tests/autoscaling/test_bullmq_workers_scale_out_and_back_in_with_real_consumers.py``
on a loaded machine (1 s ticks, an 8 s window, 10 jobs/s per worker): the first
arrivals sampled become the base, the fill then climbs to several times it (a surge the
queue cannot take while a worker starts), and the queue drains.
"""

from __future__ import annotations

import pytest

from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import PolicyState

PER_WORKER = 10.0  # jobs/s one worker completes
FILL_ENDS = 90  # seconds: 8 jobs/s from 0, 40 jobs/s from 60, none from 90


def _arriving(t: int) -> float:
    return 8.0 if t < 60 else 40.0 if t < FILL_ENDS else 0.0


def _replay(window: int, *, until: int) -> list[int]:
    """Desired workers at each 1 s tick; a worker is ready the tick it is asked for."""
    config = WorkerPolicyConfig(
        scale_down_stabilization_seconds=window,
        jobs_per_worker_per_second=PER_WORKER,
        target_drain_seconds=10,
        target_queue_wait_seconds=60,
    )
    history: SignalHistory[WorkerSample] = SignalHistory()
    state: PolicyState | None = None
    desired, backlog, arrived, completed = 1, 0.0, 0.0, 0.0
    counts = []
    for t in range(until + 1):
        arrived += _arriving(t)
        done = min(backlog + _arriving(t), desired * PER_WORKER)
        backlog += _arriving(t) - done
        completed += done
        history.append(WorkerSample(float(t), backlog, arrived, completed))
        decision = decide_workers(
            now=float(t),
            replicas=Replicas(desired=desired, ready=desired),
            history=history,
            config=config,
            state=state,
        )
        desired, state = decision.desired, decision.state
        counts.append(desired)
    return counts


@pytest.mark.parametrize("window", [8, 30])
def test_workers_are_back_to_one_a_window_after_a_surge_the_queue_cannot_take(
    window: int,
) -> None:
    counts = _replay(window, until=400)
    assert max(counts[60:FILL_ENDS]) > 1, "the surge scaled the workers out"
    # The arrivals' rate (a 15 s window) has fallen under the surge's end within 15 s of
    # the fill's end; the surge memory holds its peak for the window from there, and the
    # scale-down then keeps what that asked for as long as any upward demand (at most the
    # window, `decisions.settle`). A few ticks of slack.
    back = FILL_ENDS + 15 + 2 * window + 5
    assert counts[back:] == [1] * len(counts[back:])


@pytest.mark.parametrize("window", [30, 180, 600])
def test_the_api_keeps_a_surges_peak_asked_for_the_window_after_it_ends(window: int) -> None:
    # 300 req/s, 90 s at 1,200 from 600 s, then 300 again: the surge ends at 690 s.
    config = ApiPolicyConfig(
        scale_down_stabilization_seconds=window, requests_per_replica_per_second=150.0
    )
    history: SignalHistory[ApiSample] = SignalHistory(max_age_seconds=3600.0)
    state: PolicyState | None = None
    asked: dict[int, bool] = {}
    for t in range(0, 690 + window + 30, 5):
        rps = 1200.0 if 600 <= t < 690 else 300.0
        history.append(ApiSample(at=float(t), p95_ms=50.0, rps=rps, rps_recent=rps))
        decision = decide_api(
            now=float(t),
            replicas=Replicas(desired=8, ready=8),
            history=history,
            config=config,
            state=state,
        )
        state = decision.state
        asked[t] = "the surges seen ask to keep 1200 req/s" in decision.reason
    assert asked[690] and asked[690 + window]
    assert not asked[690 + window + 5]
