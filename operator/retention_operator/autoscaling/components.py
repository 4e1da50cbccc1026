"""The two scaled components, each one strategy that the loop runs the same way.

For every tracked stack and tick the loop asks each :class:`Component` for the
Deployment it scales, the sample of this tick's readings, the policy's
Decision, why a missing signal is missing, and the metric fields of its status
block. Nothing here does I/O; the loop reads, writes and posts Events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from retention_operator.autoscaling import policy, report
from retention_operator.autoscaling.rates import counter_rate
from retention_operator.autoscaling.samples import ApiSample, Replicas, SignalHistory, WorkerSample
from retention_operator.autoscaling.signals import LatencyReading, QueueReading
from retention_operator.autoscaling.state import Decision, PolicyState
from retention_operator.autoscaling.targets import Targets
from retention_operator.builders import naming
from retention_operator.model import RetentionStack

Manifest = dict[str, Any]
Name = Literal["api", "workers"]

# Completion rate shown in status: over the policy's rate window.
JOBS_RATE_WINDOW_SECONDS = policy.RATE_WINDOW_SECONDS

S = TypeVar("S", ApiSample, WorkerSample)


@dataclass(frozen=True, slots=True)
class Readings:
    """What this tick read for one stack: its queue, its API latency (None when the
    source gave no reading), and whether a Prometheus is configured for it at all."""

    queue: QueueReading | None
    latency: LatencyReading | None
    has_prometheus: bool


class Component(Protocol, Generic[S]):
    """One scaled component: its names, its signal and its decision."""

    @property
    def name(self) -> Name:
        """``api`` or ``workers``: the status block and the metric label."""
        ...

    @property
    def signal(self) -> str:
        """The signal it scales on, as the MetricsUnavailable warning names it."""
        ...

    def deployment(self, stack: RetentionStack) -> str:
        """The name of the Deployment it scales."""
        ...

    def sample(self, readings: Readings, *, now: float) -> S:
        """This tick's sample; values are None where nothing was read."""
        ...

    def missing_why(self, readings: Readings) -> str:
        """Why the signal is missing, for the warning (read only when it is)."""
        ...

    def decide(
        self,
        *,
        now: float,
        replicas: Replicas,
        history: SignalHistory[S],
        targets: Targets,
        state: PolicyState | None,
        paused: bool,
    ) -> Decision:
        """The policy's Decision, configured from what the stack's spec sets."""
        ...

    def metrics(self, *, sample: S, history: SignalHistory[S], readings: Readings) -> Manifest:
        """The metric fields of its ``status.autoscaling`` block, from this tick's sample,
        the history and the readings."""
        ...


class ApiComponent:
    """The API: p95 latency and request rate from Prometheus."""

    name: Name = "api"
    signal = "p95 latency"

    def deployment(self, stack: RetentionStack) -> str:
        return naming.api(stack.name)

    def sample(self, readings: Readings, *, now: float) -> ApiSample:
        reading = readings.latency
        return reading.sample() if reading is not None else ApiSample(now, None, None)

    def missing_why(self, readings: Readings) -> str:
        if not readings.has_prometheus:
            return (
                "no Prometheus is configured (spec.api.autoscaling.prometheusUrl or the "
                "operator's RETENTION_PROMETHEUS_URL)"
            )
        reading = readings.latency
        if reading is None or reading.error is None:
            return "the latest Prometheus sample is too old"
        return reading.error

    def decide(
        self,
        *,
        now: float,
        replicas: Replicas,
        history: SignalHistory[ApiSample],
        targets: Targets,
        state: PolicyState | None,
        paused: bool,
    ) -> Decision:
        return policy.decide_api(
            now=now,
            replicas=replicas,
            history=history,
            config=targets.api,
            state=state,
            paused=paused,
        )

    def metrics(
        self, *, sample: ApiSample, history: SignalHistory[ApiSample], readings: Readings
    ) -> Manifest:
        return report.api_metrics(p95_ms=sample.p95_ms, rps=sample.rps)


class WorkersComponent:
    """The workers: the queue's backlog and job counters from Redis."""

    name: Name = "workers"
    signal = "queue backlog"

    def deployment(self, stack: RetentionStack) -> str:
        return naming.workers(stack.name)

    def sample(self, readings: Readings, *, now: float) -> WorkerSample:
        reading = readings.queue
        if reading is None:
            return WorkerSample(at=now, backlog=None, arrivals_total=None, completed_total=None)
        return reading.sample()

    def missing_why(self, readings: Readings) -> str:
        reading = readings.queue
        return (reading.error if reading is not None else None) or "no queue reading"

    def decide(
        self,
        *,
        now: float,
        replicas: Replicas,
        history: SignalHistory[WorkerSample],
        targets: Targets,
        state: PolicyState | None,
        paused: bool,
    ) -> Decision:
        return policy.decide_workers(
            now=now,
            replicas=replicas,
            history=history,
            config=targets.workers,
            state=state,
            paused=paused,
        )

    def metrics(
        self, *, sample: WorkerSample, history: SignalHistory[WorkerSample], readings: Readings
    ) -> Manifest:
        jobs = counter_rate(history, _completed, window=JOBS_RATE_WINDOW_SECONDS)
        queue = readings.queue
        if queue is None or queue.backlog is None:
            return report.worker_metrics(
                backlog=None, lag=None, pending=None, jobs_per_second=jobs, queue_wait_seconds=None
            )
        return report.worker_metrics(
            backlog=queue.backlog,
            lag=queue.lag,
            pending=queue.pending,
            jobs_per_second=jobs,
            queue_wait_seconds=queue.queue_wait_seconds,
        )


def _completed(sample: WorkerSample) -> float | None:
    return sample.completed_total


API = ApiComponent()
WORKERS = WorkersComponent()
