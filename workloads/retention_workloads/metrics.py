"""The Prometheus metrics of the API and the worker, named in :mod:`retention_contract`.

Each process builds its metrics in its own :class:`prometheus_client.CollectorRegistry`
(tests start several in one interpreter). ``namespace`` and ``stack`` are
ordinary labels with one value per process rather than target labels, so
``sum by (namespace, stack) (...)`` works whatever the scrape configuration adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

import retention_contract as contract

# Fine around 200 ms, the p95 objective, so histogram_quantile interpolates
# inside a narrow bucket near the threshold the autoscaler acts on.
API_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_IDENTITY = (contract.LABEL_NAMESPACE, contract.LABEL_STACK)


@dataclass(frozen=True)
class ApiMetrics:
    """The API's request-duration histogram (labels: namespace, stack, route, method,
    status) and its counter of refused jobs (namespace, stack, reason)."""

    registry: CollectorRegistry
    request_duration: Histogram
    jobs_refused: Counter
    identity: tuple[str, str]


@dataclass(frozen=True)
class WorkerMetrics:
    """The worker's job counters, histograms and gauges, already bound to its stack."""

    registry: CollectorRegistry
    jobs: Counter
    job_duration: Histogram
    queue_latency: Histogram
    in_flight: Gauge
    reclaimed: Counter
    identity: tuple[str, str]


def api_metrics(*, namespace: str, stack: str) -> ApiMetrics:
    """Create the API's metrics in a fresh registry, the refusal reasons pre-set to 0."""
    registry = CollectorRegistry()
    histogram = Histogram(
        contract.METRIC_API_REQUEST_DURATION,
        "Time from the first byte of a request to the end of its response.",
        [*_IDENTITY, "route", "method", "status"],
        buckets=API_BUCKETS,
        registry=registry,
    )
    refused = Counter(
        contract.METRIC_API_JOBS_REFUSED.removesuffix("_total"),
        "Jobs refused with 503 by reason: queue_full, redis_memory, unavailable.",
        [*_IDENTITY, contract.LABEL_REASON],
        registry=registry,
    )
    for reason in contract.REFUSED_REASONS:
        refused.labels(namespace, stack, reason)
    return ApiMetrics(
        registry=registry,
        request_duration=histogram,
        jobs_refused=refused,
        identity=(namespace, stack),
    )


def worker_metrics(*, namespace: str, stack: str) -> WorkerMetrics:
    """Create the worker's metrics in a fresh registry, with the outcomes pre-set to 0.

    Pre-setting the series makes ``rate()`` see the first increment of each.
    """
    registry = CollectorRegistry()
    identity = (namespace, stack)
    jobs = Counter(
        contract.METRIC_WORKER_JOBS.removesuffix("_total"),
        "Jobs by outcome: done, failed (one attempt failed), deadlettered.",
        [*_IDENTITY, contract.LABEL_OUTCOME],
        registry=registry,
    )
    for outcome in ("done", "failed", "deadlettered"):
        jobs.labels(*identity, outcome)
    job_duration = Histogram(
        contract.METRIC_WORKER_JOB_DURATION,
        "Time to run one job and commit its result, for jobs that were done.",
        _IDENTITY,
        buckets=JOB_BUCKETS,
        registry=registry,
    )
    queue_latency = Histogram(
        contract.METRIC_WORKER_QUEUE_LATENCY,
        "Time from enqueue to the start of a job's first run.",
        _IDENTITY,
        buckets=QUEUE_BUCKETS,
        registry=registry,
    )
    in_flight = Gauge(
        contract.METRIC_WORKER_IN_FLIGHT,
        "Jobs this worker holds right now.",
        _IDENTITY,
        registry=registry,
    )
    reclaimed = Counter(
        contract.METRIC_WORKER_RECLAIMED.removesuffix("_total"),
        "Jobs taken over from a consumer that left them pending past the idle time.",
        _IDENTITY,
        registry=registry,
    )
    job_duration.labels(*identity)
    queue_latency.labels(*identity)
    in_flight.labels(*identity)
    reclaimed.labels(*identity)
    return WorkerMetrics(
        registry=registry,
        jobs=jobs,
        job_duration=job_duration,
        queue_latency=queue_latency,
        in_flight=in_flight,
        reclaimed=reclaimed,
        identity=identity,
    )
