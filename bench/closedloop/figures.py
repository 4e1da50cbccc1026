"""The figures of one arm, from what the client saw and what the cluster did (pure).

Inputs, all in run seconds (0 = the start of the load):

* every request Locust sent: when it was sent, its latency and whether it
  failed or timed out (a timed-out request counts with its timeout as latency);
* the scaled Deployments sampled about every second: ``spec.replicas`` (what the
  autoscaler asked for) and ``status.replicas`` (pods that exist, what they cost);
* every job: when it was enqueued and when its run began (``retention_jobs``'
  ``enqueued_at`` and ``started_at``; None for a job not begun by the end).

The keys are those ``bench.autoscaling`` prints (``api_slo_violation_s``,
``api_replica_s``, ``queue_wait_violation_s``, ``worker_replica_s``,
``scale_direction_changes``), so the same scripts read both, plus what only a
real run has (failed and timed-out requests, seconds from a load step to the
first replica change).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

WINDOW_S = 5.0
"""Width of the windows a p95 and a queue wait are judged over."""


@dataclass(frozen=True, slots=True)
class Request:
    at: float
    latency_ms: float
    outcome: str
    """``ok``, ``failed`` (an error status or a refused connection) or ``timeout``."""


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    api_wanted: int
    api_pods: int
    workers_wanted: int
    worker_pods: int


@dataclass(frozen=True, slots=True)
class Job:
    enqueued: float
    started: float | None


def p95(values: Sequence[float]) -> float:
    """The nearest-rank 95th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def windows(requests: Sequence[Request], *, duration: float) -> list[tuple[float, float, int]]:
    """(window start, client p95 in ms, requests) per :data:`WINDOW_S` window of the run."""
    count = max(math.ceil(duration / WINDOW_S - 1e-9), 0)
    latencies: list[list[float]] = [[] for _ in range(count)]
    for request in requests:
        index = int(request.at // WINDOW_S)
        if 0 <= index < count:
            latencies[index].append(request.latency_ms)
    return [(i * WINDOW_S, p95(lat), len(lat)) for i, lat in enumerate(latencies)]


def queue_waits(jobs: Sequence[Job], *, duration: float) -> list[tuple[float, float]]:
    """(window start, longest queue wait in s) per window, by enqueue time; a job not begun
    by ``duration`` has waited until then."""
    count = max(math.ceil(duration / WINDOW_S - 1e-9), 0)
    longest = [0.0] * count
    for job in jobs:
        index = int(job.enqueued // WINDOW_S)
        if 0 <= index < count:
            began = job.started if job.started is not None else duration
            longest[index] = max(longest[index], began - job.enqueued)
    return [(i * WINDOW_S, wait) for i, wait in enumerate(longest)]


def direction_changes(values: Sequence[int]) -> int:
    """Reversals of direction (up after down or down after up) in a series of replicas."""
    last, changes = 0, 0
    for before, after in pairwise(values):
        if after == before:
            continue
        sign = 1 if after > before else -1
        if last and sign != last:
            changes += 1
        last = sign
    return changes


def _replica_seconds(samples: Sequence[Sample], pods: str, *, duration: float) -> float:
    if not samples:
        return 0.0
    total = 0.0
    ends = [s.at for s in samples[1:]] + [duration]
    for sample, until in zip(samples, ends, strict=True):
        total += getattr(sample, pods) * max(min(until, duration) - max(sample.at, 0.0), 0.0)
    return total


def reaction(samples: Sequence[Sample], wanted: str, *, step: float) -> float | None:
    """Seconds from ``step`` to the first change of ``wanted`` replicas after it (None: none
    within the run)."""
    before = [s for s in samples if s.at <= step]
    if not before:
        return None
    level = getattr(before[-1], wanted)
    for sample in samples:
        if sample.at > step and getattr(sample, wanted) != level:
            return round(sample.at - step, 1)
    return None


def figures(
    *,
    requests: Sequence[Request],
    samples: Sequence[Sample],
    jobs: Sequence[Job],
    duration: float,
    target_p95_ms: float,
    target_queue_wait_s: float,
    load_steps: Sequence[float],
) -> dict[str, Any]:
    """The figures of one arm (see the module's docstring)."""
    judged = windows(requests, duration=duration)
    waits = queue_waits(jobs, duration=duration)
    api = [s.api_wanted for s in samples]
    workers = [s.workers_wanted for s in samples]
    api_turns, worker_turns = direction_changes(api), direction_changes(workers)
    started = [j for j in jobs if j.started is not None]
    return {
        "api_slo_violation_s": sum(WINDOW_S for _, q, n in judged if n and q > target_p95_ms),
        "queue_wait_violation_s": sum(WINDOW_S for _, w in waits if w > target_queue_wait_s),
        "api_replica_s": round(_replica_seconds(samples, "api_pods", duration=duration), 1),
        "worker_replica_s": round(_replica_seconds(samples, "worker_pods", duration=duration), 1),
        "scale_direction_changes": api_turns + worker_turns,
        "api_scale_direction_changes": api_turns,
        "worker_scale_direction_changes": worker_turns,
        "max_queue_wait_s": round(max((w for _, w in waits), default=0.0), 1),
        "max_api_p95_ms": round(max((q for _, q, _ in judged), default=0.0), 1),
        "requests": len(requests),
        "failed_requests": sum(r.outcome == "failed" for r in requests),
        "timed_out_requests": sum(r.outcome == "timeout" for r in requests),
        "jobs_enqueued": len(jobs),
        "jobs_started": len(started),
        "api_max_replicas": max(api, default=0),
        "worker_max_replicas": max(workers, default=0),
        "api_reaction_s": [reaction(samples, "api_wanted", step=t) for t in load_steps],
        "worker_reaction_s": [reaction(samples, "workers_wanted", step=t) for t in load_steps],
    }
