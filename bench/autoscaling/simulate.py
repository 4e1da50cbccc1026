"""One run of one policy over one trace against the plant, and the figures it scores.

Order within a step at time ``t``: starting pods whose start-up has elapsed become
ready; Prometheus scrapes if it is time; the controller acts on what it sees;
then the plant serves the arrivals of ``[t, t + step)`` and the step is scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.autoscaling.controllers import Controller, Pods, View
from bench.autoscaling.plant import Cadence, Plant, PlantConfig
from bench.autoscaling.trace import Trace

TIMELINE_COLUMNS = (
    "t",
    "policy",
    "api_replicas",
    "worker_replicas",
    "api_p95_ms",
    "backlog",
    "queue_wait_s",
)
TimelineRow = tuple[float, str, int, int, float, float, float]
DAY_S = 86400.0
# The figures kept per day of a multi-day trace (``by_day``).
DAILY = ("api_slo_violation_s", "queue_wait_violation_s", "api_replica_s", "worker_replica_s")


@dataclass(slots=True)
class Score:
    """The figures of one run; seconds are plant seconds."""

    api_slo_violation_s: float = 0.0
    queue_wait_violation_s: float = 0.0
    api_replica_s: float = 0.0
    worker_replica_s: float = 0.0
    api_direction_changes: int = 0
    worker_direction_changes: int = 0
    max_queue_wait_s: float = 0.0
    max_api_p95_ms: float = 0.0
    api_dropped_requests: float = 0.0
    days: dict[int, list[float]] = field(default_factory=dict)

    def note_day(self, day: int, *values: float) -> None:
        """Add one step's :data:`DAILY` figures to day ``day`` (days from the trace's t = 0)."""
        figures = self.days.setdefault(day, [0.0] * len(DAILY))
        for index, value in enumerate(values):
            figures[index] += value

    def by_day(self) -> list[dict[str, float]]:
        """The :data:`DAILY` figures of each day, first day first (rounded)."""
        return [
            {key: round(value, 1) for key, value in zip(DAILY, self.days[day], strict=True)}
            for day in sorted(self.days)
        ]

    def as_json(self) -> dict[str, float | int]:
        """The figures as printed by ``--json`` (rounded; direction changes summed too);
        ``--json`` adds :meth:`by_day` for a trace of more than one day."""
        return {
            "api_slo_violation_s": round(self.api_slo_violation_s, 1),
            "queue_wait_violation_s": round(self.queue_wait_violation_s, 1),
            "api_replica_s": round(self.api_replica_s, 1),
            "worker_replica_s": round(self.worker_replica_s, 1),
            "scale_direction_changes": self.api_direction_changes + self.worker_direction_changes,
            "api_scale_direction_changes": self.api_direction_changes,
            "worker_scale_direction_changes": self.worker_direction_changes,
            "max_queue_wait_s": round(self.max_queue_wait_s, 1),
            "max_api_p95_ms": round(self.max_api_p95_ms, 1),
            "api_dropped_requests": round(self.api_dropped_requests),
        }


@dataclass(slots=True)
class _Directions:
    """Counts reversals of scaling direction (up after down, or down after up)."""

    last: int = 0
    changes: int = 0

    def note(self, before: int, after: int) -> None:
        if after == before:
            return
        sign = 1 if after > before else -1
        if self.last and sign != self.last:
            self.changes += 1
        self.last = sign


@dataclass(slots=True)
class Run:
    """The score of a run and, if asked for, its timeline."""

    score: Score
    timeline: list[TimelineRow] = field(default_factory=list)


def simulate(
    trace: Trace, config: PlantConfig, controller: Controller, *, timeline: bool = False
) -> Run:
    """Run ``controller`` over ``trace`` against a fresh plant."""
    plant = Plant.build(config)
    api, workers, database, prometheus = plant.api, plant.workers, plant.database, plant.prometheus
    score, rows = Score(), []
    api_turns, worker_turns = _Directions(), _Directions()
    scrapes = Cadence(config.scrape_interval_s)
    dt = config.step_s
    steps = max(math.ceil((trace.end - trace.start) / dt - 1e-9), 0)
    for index in range(steps):
        elapsed = index * dt
        now = trace.start + elapsed
        api.fleet.advance(now=now)
        workers.fleet.advance(now=now)
        if scrapes.due(elapsed):
            prometheus.scrape(at=now, backlog=workers.backlog, lag=workers.lag)
        view = View(
            now=now,
            elapsed=elapsed,
            api=Pods(api.fleet.desired, api.fleet.ready),
            workers=Pods(workers.fleet.desired, workers.fleet.ready),
            backlog=workers.backlog,
            lag=workers.lag,
            arrivals_total=workers.arrivals_total,
            completed_total=workers.completed_total,
            oldest_wait=workers.oldest_wait(now=now),
            scrape=prometheus.latest,
        )
        want_api, want_workers = controller.act(view)
        api_turns.note(api.fleet.desired, want_api)
        worker_turns.note(workers.fleet.desired, want_workers)
        api.fleet.scale(want_api, now=now)
        workers.fleet.scale(want_workers, now=now)
        api_factor, job_factor = plant.factors(elapsed=elapsed)
        requests = trace.api_rps.integral(now, now + dt) * config.api_load_factor
        served = api.serve(requests, dt=dt, factor=api_factor, db_s=database.request_extra_s())
        prometheus.record(at=now + dt, arrivals=requests, served=served)
        jobs = trace.jobs_per_s.integral(now, now + dt) * config.jobs_load_factor
        done = workers.work(
            jobs, now=now + dt, dt=dt, factor=job_factor, db_s=database.job_extra_s()
        )
        database.serve(requests=requests, jobs=done, dt=dt)
        wait = workers.wait_estimate(now=now + dt)
        p95_ms = served.p95 * 1000
        api_violation = dt if requests > 0 and p95_ms > config.target_p95_ms else 0.0
        wait_violation = dt if wait > config.target_queue_wait_s else 0.0
        score.api_slo_violation_s += api_violation
        score.queue_wait_violation_s += wait_violation
        score.api_replica_s += api.fleet.desired * dt
        score.worker_replica_s += workers.fleet.desired * dt
        score.note_day(
            math.floor(elapsed / DAY_S),
            api_violation,
            wait_violation,
            api.fleet.desired * dt,
            workers.fleet.desired * dt,
        )
        score.max_queue_wait_s = max(score.max_queue_wait_s, wait)
        score.max_api_p95_ms = max(score.max_api_p95_ms, p95_ms)
        if timeline:
            rows.append(
                (
                    round(now, 3),
                    controller.name,
                    api.fleet.desired,
                    workers.fleet.desired,
                    round(p95_ms, 1),
                    round(workers.backlog, 1),
                    round(wait, 2),
                )
            )
    score.api_direction_changes = api_turns.changes
    score.worker_direction_changes = worker_turns.changes
    score.api_dropped_requests = api.dropped
    return Run(score=score, timeline=rows)
