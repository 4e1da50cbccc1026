"""The closed loop's figures: violation seconds from 5 s windows of what the client saw
and of the jobs' own timestamps, replica-seconds from the 1 s samples, reactions to a step."""

from __future__ import annotations

from bench.closedloop.figures import Job, Request, Sample, direction_changes, figures, p95


def _figures(**kwargs: object) -> dict[str, object]:
    base: dict[str, object] = {
        "requests": [],
        "samples": [],
        "jobs": [],
        "duration": 20.0,
        "target_p95_ms": 400.0,
        "target_queue_wait_s": 10.0,
        "load_steps": [],
    }
    return figures(**{**base, **kwargs})  # type: ignore[arg-type]


def test_a_window_whose_p95_is_over_the_target_counts_five_seconds() -> None:
    fast = [Request(at=0.1 * i, latency_ms=100, outcome="ok") for i in range(50)]
    # Window [5, 10): 10 % of its requests are slow timeouts, so its p95 is 10 s.
    slow = [
        Request(
            at=5 + 0.1 * i,
            latency_ms=10_000 if i % 10 == 0 else 100,
            outcome="timeout" if i % 10 == 0 else "ok",
        )
        for i in range(50)
    ]
    out = _figures(requests=fast + slow)
    assert out["api_slo_violation_s"] == 5.0
    assert out["timed_out_requests"] == 5
    assert out["failed_requests"] == 0
    assert out["max_api_p95_ms"] == 10_000


def test_queue_wait_is_enqueue_to_start_and_an_unstarted_job_waits_to_the_end() -> None:
    jobs = [Job(enqueued=1, started=2), Job(enqueued=6, started=30), Job(enqueued=12, started=None)]
    out = _figures(jobs=jobs)
    # [5, 10) waited 24 s and [10, 15) waited 8 s up to the end (20 s): one window over 10 s.
    assert out["queue_wait_violation_s"] == 5.0
    assert out["max_queue_wait_s"] == 24.0
    assert out["jobs_started"] == 2


def test_replica_seconds_count_pods_that_exist_and_reactions_time_the_first_change() -> None:
    samples = [
        Sample(
            at=float(t),
            api_wanted=2 if t < 8 else 4,
            api_pods=2 if t < 10 else 4,
            workers_wanted=1,
            worker_pods=1,
        )
        for t in range(20)
    ]
    out = _figures(samples=samples, load_steps=[5.0])
    assert out["api_replica_s"] == 2 * 10 + 4 * 10
    assert out["worker_replica_s"] == 20
    assert out["api_reaction_s"] == [3.0]
    assert out["worker_reaction_s"] == [None]
    assert out["api_max_replicas"] == 4


def test_direction_changes_count_reversals_only() -> None:
    assert direction_changes([2, 3, 4, 4, 3, 2, 3]) == 2
    assert direction_changes([2, 2, 2]) == 0
    assert p95([]) == 0.0
    assert p95(list(range(1, 101))) == 95
