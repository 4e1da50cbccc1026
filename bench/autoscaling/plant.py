"""The plant: API pods, workers, the job queue and Prometheus, the same for every policy.

Deterministic (no randomness): the trace's noise is the only noise. Every step
(1 s by default) the plant takes the arrivals of the trace, serves them with the
ready pods and records what Prometheus and Redis would show. README.md states
each assumption; :class:`PlantConfig` holds every number, and ``--plant`` overrides
any of them from JSON.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.autoscaling.latency import RHO_MAX, MMc, mixture_p95


@dataclass(frozen=True, kw_only=True, slots=True)
class PlantConfig:
    """Every number of the plant and of the targets the policies are judged by."""

    api_service_time_ms: float = 20.0
    api_concurrency: int = 4
    api_request_timeout_s: float = 30.0
    worker_job_time_ms: float = 10.0
    api_startup_s: float = 30.0
    worker_startup_s: float = 30.0
    api_min_replicas: int = 2
    api_max_replicas: int = 50
    worker_min_replicas: int = 1
    worker_max_replicas: int = 100
    target_p95_ms: float = 200.0
    target_queue_wait_s: float = 60.0
    target_drain_s: float = 30.0
    scrape_interval_s: float = 15.0
    rate_window_s: float = 60.0
    step_s: float = 1.0

    @property
    def jobs_per_worker_per_second(self) -> float:
        return 1000.0 / self.worker_job_time_ms

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PlantConfig:
        """Defaults overridden by ``data``; an unknown key is an error that names it."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown plant setting(s): {', '.join(unknown)}")
        defaults = cls()
        values = {name: type(getattr(defaults, name))(data[name]) for name in known if name in data}
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> PlantConfig:
        with path.open() as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_mapping(data)


class Fleet:
    """Pods of one Deployment: ready ones, and starting ones with the time they get ready."""

    def __init__(self, *, replicas: int, startup_s: float) -> None:
        self.ready = replicas
        self.starting: list[float] = []
        self._startup = startup_s

    @property
    def desired(self) -> int:
        return self.ready + len(self.starting)

    def scale(self, desired: int, *, now: float) -> None:
        """Set ``spec.replicas``: new pods start now; removal takes starting pods first."""
        desired = max(desired, 0)
        while self.desired < desired:
            self.starting.append(now + self._startup)
        while self.desired > desired:
            if self.starting:
                self.starting.pop()
            else:
                self.ready -= 1

    def advance(self, *, now: float) -> None:
        """Pods whose start-up has elapsed become ready."""
        while self.starting and self.starting[0] <= now:
            self.starting.pop(0)
            self.ready += 1


@dataclass(frozen=True, slots=True)
class Scrape:
    """What Prometheus holds after a scrape at ``at``: p95 (ms) and request rate over the
    rate window, and the backlog gauge."""

    at: float
    p95_ms: float | None
    rps: float | None
    backlog: float


class Api:
    """API pods: each an M/M/c queue, plus a shared fluid queue when they are overloaded.

    Requests spread evenly over ready pods. Above utilisation ``RHO_MAX`` the excess
    waits in a queue that drains when capacity returns; a request waits at most the
    timeout (the rest are dropped and counted).
    """

    def __init__(self, config: PlantConfig) -> None:
        self.model = MMc(
            servers=config.api_concurrency, service_s=config.api_service_time_ms / 1000
        )
        self.fleet = Fleet(replicas=config.api_min_replicas, startup_s=config.api_startup_s)
        self.queue = 0.0
        self.dropped = 0.0
        self._timeout = config.api_request_timeout_s

    def serve(self, arrivals: float, *, dt: float) -> tuple[float, float, float]:
        """Serve ``arrivals`` over ``dt``; returns (p95 s, utilisation, extra wait s)."""
        capacity = self.fleet.ready * self.model.capacity
        if capacity <= 0:
            self.queue += arrivals
            return self._timeout, RHO_MAX, self._timeout
        before = self.queue
        self.queue = max(0.0, self.queue + arrivals - capacity * dt)
        limit = capacity * self._timeout
        if self.queue > limit:
            self.dropped += self.queue - limit
            self.queue = limit
        extra = (before + self.queue) / 2 / capacity
        rho = min(arrivals / dt / capacity, RHO_MAX)
        return self.model.p95(rho) + extra, rho, extra


class Workers:
    """Workers consuming the queue at a fixed throughput each; jobs are a fluid, taken
    first in, first out (so the age of the oldest waiting job is known, as Redis tells it)."""

    def __init__(self, config: PlantConfig) -> None:
        self.fleet = Fleet(replicas=config.worker_min_replicas, startup_s=config.worker_startup_s)
        self.throughput = config.jobs_per_worker_per_second
        self.backlog = 0.0
        self.arrivals_total = 0.0
        self.completed_total = 0.0
        self.backlog_since: float | None = None
        # (enqueued at, jobs) of what waits, oldest first.
        self._cohorts: deque[tuple[float, float]] = deque()

    def work(self, arrivals: float, *, now: float, dt: float) -> None:
        """Take the arrivals of the step that ends at ``now`` and work for ``dt``."""
        capacity = self.fleet.ready * self.throughput * dt
        done = min(self.backlog + arrivals, capacity)
        self.backlog += arrivals - done
        self.arrivals_total += arrivals
        self.completed_total += done
        if arrivals > 0:
            self._cohorts.append((now - dt, arrivals))
        self._take(done)
        if self.backlog < 1.0:
            self.backlog_since = None
        elif self.backlog_since is None:
            self.backlog_since = now

    def _take(self, jobs: float) -> None:
        while jobs > 0 and self._cohorts:
            at, size = self._cohorts[0]
            if size <= jobs + 1e-9:
                jobs -= size
                self._cohorts.popleft()
            else:
                self._cohorts[0] = (at, size - jobs)
                jobs = 0.0
        if self.backlog < 1e-9:
            self._cohorts.clear()

    def oldest_wait(self, *, now: float) -> float:
        """Seconds the oldest job not yet taken has waited (0 when under one job waits)."""
        if self.backlog < 1.0 or not self._cohorts:
            return 0.0
        return now - self._cohorts[0][0]

    def wait_estimate(self, *, now: float) -> float:
        """Seconds a job queued now waits at the current capacity: backlog over the
        ready workers' throughput; with no ready worker, the age of the backlog."""
        if self.backlog < 1.0:
            return 0.0
        if self.fleet.ready > 0:
            return self.backlog / (self.fleet.ready * self.throughput)
        return now - (self.backlog_since if self.backlog_since is not None else now)


class Prometheus:
    """Scrapes every ``scrape_interval_s``; p95 and request rate over ``rate_window_s``."""

    def __init__(self, config: PlantConfig, model: MMc) -> None:
        self._model = model
        self._window = config.rate_window_s
        self._step = config.step_s
        self._records: deque[tuple[float, float, float, float]] = deque()
        self.latest: Scrape | None = None

    def record(self, *, at: float, arrivals: float, rho: float, extra: float) -> None:
        """Note the requests of the step that ended at ``at``."""
        self._records.append((at, arrivals, rho, extra))
        while self._records and self._records[0][0] <= at - self._window:
            self._records.popleft()

    def scrape(self, *, at: float, backlog: float) -> None:
        parts: list[tuple[float, float, float]] = []
        requests = 0.0
        for _, arrivals, rho, extra in self._records:
            requests += arrivals
            if parts and abs(parts[-1][1] - rho) < 1e-4 and abs(parts[-1][2] - extra) < 1e-4:
                parts[-1] = (parts[-1][0] + arrivals, rho, extra)
            else:
                parts.append((arrivals, rho, extra))
        p95 = mixture_p95(self._model, parts)
        span = min(self._window, len(self._records) * self._step) or 1.0
        self.latest = Scrape(
            at=at,
            p95_ms=None if p95 is None else p95 * 1000,
            rps=requests / span if self._records else None,
            backlog=backlog,
        )


def is_multiple(value: float, step: float) -> bool:
    """True if ``value`` is a whole multiple of ``step`` (to a millisecond)."""
    return math.isclose(value / step, round(value / step), abs_tol=1e-6)
