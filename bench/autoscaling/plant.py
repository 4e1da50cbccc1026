"""The plant: API pods, workers, the job queue, an optional database and Prometheus.

Every policy runs against the same plant, fed the same trace. Every step (1 s by
default) the plant takes the arrivals of the trace, serves them with the ready pods
and records what Prometheus and Redis would show. :class:`PlantConfig` holds every
number; ``--plant FILE`` overrides any of them (:meth:`PlantConfig.from_mapping`
checks each key and value and names the one that is wrong). README.md states each
assumption. Randomness (cost noise, start-up jitter) comes from ``seed`` alone, so a
run is repeatable and every policy sees the same noise.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from bench.autoscaling.latency import (
    ONE_CLASS,
    RHO_MAX,
    Classes,
    Part,
    PodLatency,
    erlang_c,
    load_at_target,
    mixture_p95,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PlantConfig:
    """Every number of the plant and of the targets the policies are judged by.

    See README.md ("The plant") for what each key means; the defaults are the plant
    of the public figures.
    """

    # API pods.
    api_service_time_ms: float = 20.0
    api_concurrency: int = 4
    api_request_classes: Classes = ONE_CLASS
    api_cost_noise: float = 0.0
    api_request_timeout_s: float = 30.0
    api_startup_s: float = 30.0
    api_startup_jitter_s: float = 0.0
    api_load_factor: float = 1.0
    api_min_replicas: int = 2
    api_max_replicas: int = 50
    # Workers.
    worker_job_time_ms: float = 10.0
    worker_job_noise: float = 0.0
    worker_startup_s: float = 30.0
    worker_startup_jitter_s: float = 0.0
    jobs_load_factor: float = 1.0
    worker_min_replicas: int = 1
    worker_max_replicas: int = 100
    # A release: from release_at_s (seconds after the trace starts) costs change.
    release_at_s: float | None = None
    release_api_cost_factor: float = 1.0
    release_job_cost_factor: float = 1.0
    # The database behind PgBouncer, shared by every pod; None: no shared bottleneck.
    db_connections: int | None = None
    db_query_ms: float = 2.0
    db_job_query_ms: float = 2.0
    # Objectives and the monitoring around the plant.
    target_p95_ms: float = 200.0
    target_queue_wait_s: float = 60.0
    target_drain_s: float = 30.0
    scrape_interval_s: float = 15.0
    rate_window_s: float = 60.0
    noise_correlation_s: float = 30.0
    step_s: float = 1.0
    seed: int = 0

    @property
    def jobs_per_worker_per_second(self) -> float:
        """One worker's throughput at the start (cost factor 1, an idle database)."""
        return 1000.0 / (self.worker_job_time_ms + self._db_job_ms())

    def _db_job_ms(self) -> float:
        return self.db_job_query_ms if self.db_connections is not None else 0.0

    def api_latency(self) -> PodLatency:
        """The latency model of one API pod (tabulated once per kind of pod)."""
        return _pod_latency(
            self.api_concurrency, self.api_service_time_ms / 1000, self.api_request_classes
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PlantConfig:
        """Defaults overridden by ``data``; raises ValueError naming the first key that is
        unknown or whose value is of the wrong kind or out of range."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown plant setting(s): {', '.join(unknown)}")
        values = {name: _checked(name, data[name]) for name in sorted(data)}
        config = replace(cls(), **values)
        config._check_together()
        return config

    @classmethod
    def from_file(cls, path: Path) -> PlantConfig:
        """The plant in a JSON file: one object, keys as in :class:`PlantConfig`."""
        with path.open() as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        try:
            return cls.from_mapping(data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def _check_together(self) -> None:
        if self.api_min_replicas > self.api_max_replicas:
            raise ValueError("api_min_replicas must be at most api_max_replicas")
        if self.worker_min_replicas > self.worker_max_replicas:
            raise ValueError("worker_min_replicas must be at most worker_max_replicas")
        if self.target_drain_s > self.target_queue_wait_s:
            raise ValueError("target_drain_s must be at most target_queue_wait_s")


@functools.lru_cache(maxsize=16)
def _pod_latency(servers: int, service_s: float, classes: Classes) -> PodLatency:
    return PodLatency(servers=servers, service_s=service_s, classes=classes)


# --- Checking a plant file ---------------------------------------------------------------------

# (kind, low, high): kind "int", "float" or "float?"; bounds inclusive. Bounds keep a run
# meaningful and bounded in time, not realistic: anything inside them must run.
_RULES: dict[str, tuple[str, float, float]] = {
    "api_service_time_ms": ("float", 0.01, 600_000),
    "api_concurrency": ("int", 1, 1000),
    "api_cost_noise": ("float", 0, 2),
    "api_request_timeout_s": ("float", 0.1, 3600),
    "api_startup_s": ("float", 0, 3600),
    "api_startup_jitter_s": ("float", 0, 3600),
    "api_load_factor": ("float", 0, 1000),
    "api_min_replicas": ("int", 1, 1000),
    "api_max_replicas": ("int", 1, 1000),
    "worker_job_time_ms": ("float", 0.01, 3_600_000),
    "worker_job_noise": ("float", 0, 2),
    "worker_startup_s": ("float", 0, 3600),
    "worker_startup_jitter_s": ("float", 0, 3600),
    "jobs_load_factor": ("float", 0, 1000),
    "worker_min_replicas": ("int", 0, 1000),
    "worker_max_replicas": ("int", 1, 1000),
    "release_at_s": ("float?", 0, 1e9),
    "release_api_cost_factor": ("float", 0.01, 100),
    "release_job_cost_factor": ("float", 0.01, 100),
    "db_connections": ("int?", 1, 100_000),
    "db_query_ms": ("float", 0, 600_000),
    "db_job_query_ms": ("float", 0, 3_600_000),
    "target_p95_ms": ("float", 1, 600_000),
    "target_queue_wait_s": ("float", 1, 86_400),
    "target_drain_s": ("float", 1, 86_400),
    "scrape_interval_s": ("float", 1, 600),
    "rate_window_s": ("float", 1, 3600),
    "noise_correlation_s": ("float", 0.1, 86_400),
    "step_s": ("float", 0.1, 60),
    "seed": ("int", 0, 2**63 - 1),
}


def _checked(name: str, value: Any) -> Any:
    if name == "api_request_classes":
        return _classes(value)
    kind, low, high = _RULES[name]
    if value is None and kind.endswith("?"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if kind.startswith("int"):
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        value = int(value)
    else:
        value = float(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie within [{low:g}, {high:g}], not {value!r}")
    return value


def _classes(value: Any) -> Classes:
    """``[[share, cost], ...]``: positive shares summing to 1, costs in (0, 1000]."""
    name = "api_request_classes"
    if not isinstance(value, list) or not value or len(value) > 16:
        raise ValueError(f"{name} must be a list of 1 to 16 [share, cost] pairs")
    out = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in item)
        ):
            raise ValueError(f"{name}: each entry must be [share, cost], not {item!r}")
        share, cost = float(item[0]), float(item[1])
        if not (0 < share <= 1 and 0 < cost <= 1000):
            raise ValueError(f"{name}: share must lie in (0, 1] and cost in (0, 1000]: {item!r}")
        out.append((share, cost))
    if abs(sum(share for share, _ in out) - 1) > 1e-6:
        raise ValueError(f"{name}: the shares must sum to 1")
    return tuple(out)


# --- What a careful user measures before setting up a baseline ----------------------------


@dataclass(frozen=True, slots=True)
class LoadTest:
    """A one-pod load test at the start of the trace: the highest request rate one API pod
    serves within the p95 target (``None`` when even one request at a time is slower
    than the target; then ``api_saturation_rps`` is all it shows), and one worker's
    throughput."""

    api_rps_at_target: float | None
    api_saturation_rps: float
    worker_jobs_per_s: float


def load_test(plant: PlantConfig) -> LoadTest:
    """What a load test of one pod and one worker finds, before any release."""
    model = plant.api_latency()
    target_s = plant.target_p95_ms / 1000
    # One pod alone barely loads a shared database: its share of the time is added.
    db_s = plant.db_query_ms / 1000 if plant.db_connections is not None else 0.0
    at_target = load_at_target(model, target_s=target_s - db_s) if target_s > db_s else None
    return LoadTest(
        api_rps_at_target=at_target,
        api_saturation_rps=model.capacity,
        worker_jobs_per_s=plant.jobs_per_worker_per_second,
    )


# --- The parts of the plant --------------------------------------------------------------------


class Noise:
    """A cost factor around 1 that drifts: log-normal, AR(1) with time constant ``tau``."""

    def __init__(self, *, sigma: float, tau: float, dt: float, rng: random.Random) -> None:
        self._sigma = sigma
        self._keep = math.exp(-dt / tau)
        self._rng = rng
        self._x = rng.gauss(0.0, sigma) if sigma > 0 else 0.0

    def next(self) -> float:
        """The factor of the next step (exactly 1 without noise)."""
        if self._sigma <= 0:
            return 1.0
        fresh = math.sqrt(1 - self._keep**2) * self._sigma
        self._x = self._keep * self._x + fresh * self._rng.gauss(0.0, 1.0)
        return math.exp(self._x - self._sigma**2 / 2)


class Fleet:
    """Pods of one Deployment: ready ones, and starting ones with the time they get ready."""

    def __init__(
        self, *, replicas: int, startup_s: float, jitter_s: float = 0.0, rng: random.Random
    ) -> None:
        self.ready = replicas
        self.starting: list[float] = []
        self._startup = startup_s
        self._jitter = jitter_s
        self._rng = rng

    @property
    def desired(self) -> int:
        return self.ready + len(self.starting)

    def scale(self, desired: int, *, now: float) -> None:
        """Set ``spec.replicas``: new pods start now; removal takes starting pods first
        (the last started first)."""
        desired = max(desired, 0)
        while self.desired < desired:
            jitter = self._rng.uniform(0.0, self._jitter) if self._jitter > 0 else 0.0
            self.starting.append(now + self._startup + jitter)
        while self.desired > desired:
            if self.starting:
                self.starting.pop()
            else:
                self.ready -= 1

    def advance(self, *, now: float) -> None:
        """Pods whose start-up has elapsed become ready."""
        still = [at for at in self.starting if at > now]
        self.ready += len(self.starting) - len(still)
        self.starting = still


class Database:
    """The database behind PgBouncer: ``connections`` queries at once, each of mean
    ``db_query_ms`` (a request's) or ``db_job_query_ms`` (a job's), exponential (M/M/k).
    Its response time adds to every request and job; past 99 % busy the excess work
    waits in a fluid queue shared by all. Without ``db_connections`` there is none."""

    def __init__(self, config: PlantConfig) -> None:
        self.connections = config.db_connections
        self._request_s = config.db_query_ms / 1000
        self._job_s = config.db_job_query_ms / 1000
        self._queue_s = 0.0  # seconds of query work waiting
        self._wait_s = 0.0  # a query's wait before a connection takes it, last step

    def serve(self, *, requests: float, jobs: float, dt: float) -> None:
        """Note the queries of one step (requests and jobs done in it)."""
        if self.connections is None:
            return
        queries = requests + jobs
        work = requests * self._request_s + jobs * self._job_s
        capacity = self.connections * dt
        rho = min(work / capacity, RHO_MAX)
        self._queue_s = max(0.0, self._queue_s + work - capacity * RHO_MAX)
        mean = work / queries if queries > 0 else max(self._request_s, self._job_s)
        wait_c = erlang_c(self.connections, rho * self.connections)
        waiting = wait_c * mean / (self.connections * (1 - rho))
        self._wait_s = waiting + self._queue_s / self.connections

    def request_extra_s(self) -> float:
        """Seconds a request spends at the database (0 without one)."""
        return self._request_s + self._wait_s if self.connections is not None else 0.0

    def job_extra_s(self) -> float:
        """Seconds a job spends at the database (0 without one)."""
        return self._job_s + self._wait_s if self.connections is not None else 0.0


@dataclass(frozen=True, slots=True)
class Served:
    """What one step of the API did: the p95 (s) of its requests, how many completed, and
    what Prometheus records of them (utilisation, cost factor, extra wait)."""

    p95: float
    completed: float
    rho: float
    factor: float
    extra: float


class Api:
    """API pods: each a :class:`PodLatency` queue, plus a shared fluid queue when they are
    overloaded. Requests spread evenly over ready pods. Above utilisation ``RHO_MAX``
    the excess waits in a queue that drains when capacity returns; a request waits at
    most the timeout (the rest are dropped and counted)."""

    def __init__(self, config: PlantConfig, rng: random.Random) -> None:
        self.model = config.api_latency()
        self.fleet = Fleet(
            replicas=config.api_min_replicas,
            startup_s=config.api_startup_s,
            jitter_s=config.api_startup_jitter_s,
            rng=random.Random(rng.random()),
        )
        self.queue = 0.0
        self.dropped = 0.0
        self._timeout = config.api_request_timeout_s

    def serve(self, arrivals: float, *, dt: float, factor: float, db_s: float) -> Served:
        """Serve ``arrivals`` over ``dt`` at cost ``factor``, each request also spending
        ``db_s`` at the database."""
        capacity = self.fleet.ready * self.model.capacity / factor
        if capacity <= 0:
            self.queue += arrivals
            return Served(self._timeout, 0.0, RHO_MAX, factor, self._timeout)
        before = self.queue
        completed = min(before + arrivals, capacity * dt)
        self.queue = before + arrivals - completed
        limit = capacity * self._timeout
        if self.queue > limit:
            self.dropped += self.queue - limit
            self.queue = limit
        extra = (before + self.queue) / 2 / capacity + db_s
        rho = min(arrivals / dt / capacity, RHO_MAX)
        return Served(self.model.p95(rho) * factor + extra, completed, rho, factor, extra)


class Workers:
    """Workers consuming the queue; jobs are a fluid, taken first in, first out (so the
    age of the oldest waiting job is known, as Redis tells it). A busy worker holds one
    job (pending); the rest of the backlog is the group's lag."""

    def __init__(self, config: PlantConfig, rng: random.Random) -> None:
        self.fleet = Fleet(
            replicas=config.worker_min_replicas,
            startup_s=config.worker_startup_s,
            jitter_s=config.worker_startup_jitter_s,
            rng=random.Random(rng.random()),
        )
        self._job_s = config.worker_job_time_ms / 1000
        self.throughput = 1.0 / (self._job_s + config._db_job_ms() / 1000)
        self.backlog = 0.0
        self.arrivals_total = 0.0
        self.completed_total = 0.0
        self.backlog_since: float | None = None
        # (enqueued at, jobs) of what waits, oldest first.
        self._cohorts: deque[tuple[float, float]] = deque()

    @property
    def lag(self) -> float:
        """Jobs not yet delivered to a worker (XINFO GROUPS ``lag``)."""
        return max(self.backlog - min(self.backlog, self.fleet.ready), 0.0)

    def work(self, arrivals: float, *, now: float, dt: float, factor: float, db_s: float) -> float:
        """Take the arrivals of the step that ends at ``now`` and work for ``dt`` at cost
        ``factor``, each job also spending ``db_s`` at the database; returns jobs done."""
        self.throughput = 1.0 / (self._job_s * factor + db_s)
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
        return done

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


@dataclass(frozen=True, slots=True)
class Scrape:
    """What Prometheus holds after a scrape at ``at``: p95 (ms) and request rate over the
    rate window, the rate over the last scrape interval, and the lag gauge an exporter
    reports."""

    at: float
    p95_ms: float | None
    rps: float | None
    rps_last: float | None
    backlog: float
    lag: float


class Prometheus:
    """Scrapes every ``scrape_interval_s``; p95 and request rate over ``rate_window_s``."""

    def __init__(self, config: PlantConfig, model: PodLatency) -> None:
        self._model = model
        self._window = config.rate_window_s
        self._interval = config.scrape_interval_s
        self._step = config.step_s
        self._records: deque[tuple[float, Part]] = deque()
        self.latest: Scrape | None = None

    def record(self, *, at: float, arrivals: float, served: Served) -> None:
        """Note the requests that arrived in the step that ended at ``at``, with the
        latency they met. Requests are counted on arrival (a counter at request start,
        or a load balancer's): counted at completion, a rate saturates in overload and
        slows every rate-driven policy; the baselines get the better signal."""
        part = (arrivals, served.rho, served.factor, served.extra)
        self._records.append((at, part))
        while self._records and self._records[0][0] <= at - self._window:
            self._records.popleft()

    def scrape(self, *, at: float, backlog: float, lag: float) -> None:
        parts: list[Part] = []
        requests = last = 0.0
        for recorded, (arrivals, rho, factor, extra) in self._records:
            requests += arrivals
            if recorded > at - self._interval:
                last += arrivals
            if parts and _close(parts[-1], rho, factor, extra):
                weight, _, _, _ = parts[-1]
                parts[-1] = (weight + arrivals, rho, factor, extra)
            else:
                parts.append((arrivals, rho, factor, extra))
        p95 = mixture_p95(self._model, parts)
        span = min(self._window, len(self._records) * self._step) or 1.0
        last_span = min(self._interval, len(self._records) * self._step) or 1.0
        self.latest = Scrape(
            at=at,
            p95_ms=None if p95 is None else p95 * 1000,
            rps=requests / span if self._records else None,
            rps_last=last / last_span if self._records else None,
            backlog=backlog,
            lag=lag,
        )


def _close(part: Part, rho: float, factor: float, extra: float) -> bool:
    return (
        abs(part[1] - rho) < 1e-4 and abs(part[2] - factor) < 1e-4 and abs(part[3] - extra) < 1e-4
    )


@dataclass(slots=True)
class Plant:
    """The whole plant for one run: its parts and the noise of each step."""

    config: PlantConfig
    api: Api
    workers: Workers
    database: Database
    prometheus: Prometheus
    api_noise: Noise
    job_noise: Noise

    @classmethod
    def build(cls, config: PlantConfig) -> Plant:
        rng = random.Random(config.seed)
        api = Api(config, rng)
        workers = Workers(config, rng)
        tau, dt = config.noise_correlation_s, config.step_s
        return cls(
            config=config,
            api=api,
            workers=workers,
            database=Database(config),
            prometheus=Prometheus(config, api.model),
            api_noise=Noise(
                sigma=config.api_cost_noise, tau=tau, dt=dt, rng=random.Random(rng.random())
            ),
            job_noise=Noise(
                sigma=config.worker_job_noise, tau=tau, dt=dt, rng=random.Random(rng.random())
            ),
        )

    def factors(self, *, elapsed: float) -> tuple[float, float]:
        """The API's and the jobs' cost factors of the step starting ``elapsed`` s in."""
        config = self.config
        api, jobs = self.api_noise.next(), self.job_noise.next()
        if config.release_at_s is not None and elapsed >= config.release_at_s:
            api *= config.release_api_cost_factor
            jobs *= config.release_job_cost_factor
        return api, jobs


class Cadence:
    """Something done every ``period`` seconds: due at the first step at or after each
    multiple of the period (so a period need not be a multiple of the step)."""

    def __init__(self, period: float) -> None:
        self._period = period
        self._next = 0.0

    def due(self, elapsed: float) -> bool:
        if elapsed + 1e-6 < self._next:
            return False
        while self._next <= elapsed + 1e-6:
            self._next += self._period
        return True
