"""Workers are sized on arrivals plus backlog over the drain target, per measured throughput."""

from __future__ import annotations

from retention_operator.autoscaling.config import WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_workers
from retention_operator.autoscaling.samples import Replicas, SignalHistory, WorkerSample
from retention_operator.autoscaling.state import PolicyState

CONFIG = WorkerPolicyConfig(max_replicas=100, target_drain_seconds=30)


def _steady(*, rate: float, backlog: float, done_rate: float, until: float = 60.0):  # type: ignore[no-untyped-def]
    history: SignalHistory[WorkerSample] = SignalHistory()
    t = 0.0
    while t <= until:
        history.append(WorkerSample(t, backlog, rate * t, done_rate * t))
        t += 5.0
    return history


def test_arrivals_and_backlog_set_the_count() -> None:
    # 250 jobs/s arriving and 3000 queued: (250 + 3000 / 30) / 100 = 3.5 -> 4 workers.
    history = _steady(rate=250, backlog=3000, done_rate=100)
    decision = decide_workers(
        now=60.0, replicas=Replicas(desired=1, ready=1), history=history, config=CONFIG
    )
    assert decision.desired == 4
    assert decision.direction == "up"
    assert "drain within 30 s" in decision.reason


def test_throughput_is_measured_while_workers_are_busy() -> None:
    # Two busy workers complete 100 jobs/s together: 50 each, not the 100 prior.
    history = _steady(rate=200, backlog=50_000, done_rate=100)
    decision = decide_workers(
        now=60.0,
        replicas=Replicas(desired=2, ready=2),
        history=history,
        config=CONFIG,
        state=PolicyState(ready=2, ready_since=0.0),
    )
    assert decision.state.capacity == 75.0  # Halfway from the 100 prior to 50.


def test_idle_workers_do_not_lower_the_throughput() -> None:
    history = _steady(rate=20, backlog=0, done_rate=20)
    decision = decide_workers(
        now=60.0,
        replicas=Replicas(desired=2, ready=2),
        history=history,
        config=CONFIG,
        state=PolicyState(ready=2, ready_since=0.0),
    )
    assert decision.state.capacity == 100.0


def test_a_small_deficit_waits_for_the_backlog_term() -> None:
    # 205 jobs/s on 2 workers: short by 0.05 of a worker, under the slack.
    history = _steady(rate=205, backlog=0, done_rate=200)
    decision = decide_workers(
        now=60.0, replicas=Replicas(desired=2, ready=2), history=history, config=CONFIG
    )
    assert decision.desired == 2


def test_scale_down_goes_only_to_a_count_that_keeps_up() -> None:
    # 205 jobs/s: 2 workers could not keep up, so 3 stay; at 195 jobs/s 2 do.
    stay = decide_workers(
        now=60.0,
        replicas=Replicas(desired=3, ready=3),
        history=_steady(rate=205, backlog=0, done_rate=205),
        config=WorkerPolicyConfig(scale_down_stabilization_seconds=0),
    )
    assert stay.desired == 3
    down = decide_workers(
        now=60.0,
        replicas=Replicas(desired=3, ready=3),
        history=_steady(rate=195, backlog=0, done_rate=195),
        config=WorkerPolicyConfig(scale_down_stabilization_seconds=0),
    )
    assert down.desired == 2


def test_a_late_oldest_job_shortens_the_drain_time() -> None:
    # 3000 queued at 100 jobs/s each: within the 30 s drain target that is one worker.
    # When the oldest of them has already waited 50 of its 60 s, what is left is 10 s.
    def decide_with(waited: float | None) -> int:
        history: SignalHistory[WorkerSample] = SignalHistory()
        for at in (0.0, 15.0):
            history.append(
                WorkerSample(
                    at=at, backlog=3000, arrivals_total=0, completed_total=0, queue_wait_s=waited
                )
            )
        return decide_workers(
            now=15.0, replicas=Replicas(desired=1, ready=1), history=history, config=CONFIG
        ).desired

    assert decide_with(None) == decide_with(5.0) == 1
    assert decide_with(50.0) == 3
    assert decide_with(500.0) == 3  # already late: the shortest drain time, not a burst
