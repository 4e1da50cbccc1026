"""The policies under test, each at its own cadence, fed by the plant.

Each controller is called every plant step with a :class:`View` of what the
cluster, Redis and Prometheus show at that moment, and returns the desired API
and worker replicas. ``retention`` runs the operator's own policy
(:mod:`retention_operator.autoscaling.policy`: ``decide_api`` and ``decide_workers``)
every 5 s; ``hpa`` runs the HPA every 15 s; ``keda``
polls every 30 s and feeds the HPA, which syncs every 15 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bench.autoscaling.hpa import (
    AverageValueTarget,
    HpaConfig,
    HpaState,
    KedaConfig,
    KedaState,
    MetricReading,
    ValueTarget,
    hpa_sync,
    keda_metric,
    keda_poll,
)
from bench.autoscaling.plant import PlantConfig, Scrape, is_multiple
from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import PolicyState

RETENTION_TICK_S = 5.0
HPA_SYNC_S = 15.0
KEDA_POLL_S = 30.0


@dataclass(frozen=True, slots=True)
class Pods:
    """A Deployment as the API server shows it."""

    desired: int
    ready: int


@dataclass(frozen=True, slots=True)
class View:
    """What a controller can see at ``now``: the Deployments, Redis (fresh: the backlog,
    the counters and the age of the oldest waiting job), Prometheus (its last scrape)."""

    now: float
    elapsed: float
    api: Pods
    workers: Pods
    backlog: float
    arrivals_total: float
    completed_total: float
    oldest_wait: float
    scrape: Scrape | None


class Controller(Protocol):
    name: str

    def act(self, view: View) -> tuple[int, int]:
        """Desired (API, worker) replicas after this step."""
        ...


def list_length(plant: PlantConfig) -> float:
    """KEDA's listLength a careful user picks: a full backlog per worker drains within
    half the queue-wait target."""
    return plant.jobs_per_worker_per_second * plant.target_queue_wait_s / 2


class Retention:
    """The operator's policy (``decide_api``, ``decide_workers``) every :data:`RETENTION_TICK_S`."""

    name = "retention"

    def __init__(self, plant: PlantConfig) -> None:
        self.api_config = ApiPolicyConfig(
            min_replicas=plant.api_min_replicas,
            max_replicas=plant.api_max_replicas,
            target_p95_milliseconds=round(plant.target_p95_ms),
        )
        self.worker_config = WorkerPolicyConfig(
            min_replicas=plant.worker_min_replicas,
            max_replicas=plant.worker_max_replicas,
            target_queue_wait_seconds=round(plant.target_queue_wait_s),
            target_drain_seconds=round(plant.target_drain_s),
            scale_to_zero=plant.worker_min_replicas == 0,
        )
        self.api_history: SignalHistory[ApiSample] = SignalHistory()
        self.worker_history: SignalHistory[WorkerSample] = SignalHistory()
        self.api_state: PolicyState | None = None
        self.worker_state: PolicyState | None = None
        self.reasons: list[tuple[float, str]] = []

    def act(self, view: View) -> tuple[int, int]:
        if not is_multiple(view.elapsed, RETENTION_TICK_S):
            return view.api.desired, view.workers.desired
        if view.scrape is not None:
            self.api_history.append(
                ApiSample(at=view.scrape.at, p95_ms=view.scrape.p95_ms, rps=view.scrape.rps)
            )
        self.worker_history.append(
            WorkerSample(
                at=view.now,
                backlog=view.backlog,
                arrivals_total=view.arrivals_total,
                completed_total=view.completed_total,
                queue_wait_s=view.oldest_wait,
            )
        )
        api = decide_api(
            now=view.now,
            replicas=Replicas(desired=view.api.desired, ready=view.api.ready),
            history=self.api_history,
            config=self.api_config,
            state=self.api_state,
        )
        workers = decide_workers(
            now=view.now,
            replicas=Replicas(desired=view.workers.desired, ready=view.workers.ready),
            history=self.worker_history,
            config=self.worker_config,
            state=self.worker_state,
        )
        self.api_state, self.worker_state = api.state, workers.state
        for decision in (api, workers):
            if decision.direction != "none":
                self.reasons.append((view.now, decision.reason))
        return api.desired, workers.desired


class Hpa:
    """Two HPAs every :data:`HPA_SYNC_S`: the API on p95 (Value, the target) and the
    workers on the backlog (External AverageValue, :func:`list_length`), both read
    from Prometheus's last scrape (as through prometheus-adapter)."""

    name = "hpa"

    def __init__(self, plant: PlantConfig) -> None:
        self.api_config = HpaConfig(
            min_replicas=plant.api_min_replicas, max_replicas=plant.api_max_replicas
        )
        self.worker_config = HpaConfig(
            min_replicas=max(plant.worker_min_replicas, 1),
            max_replicas=plant.worker_max_replicas,
        )
        self.p95_target = ValueTarget(plant.target_p95_ms)
        self.backlog_target = AverageValueTarget(list_length(plant))
        self.api_state = HpaState()
        self.worker_state = HpaState()

    def act(self, view: View) -> tuple[int, int]:
        if not is_multiple(view.elapsed, HPA_SYNC_S):
            return view.api.desired, view.workers.desired
        scrape = view.scrape
        p95 = scrape.p95_ms if scrape is not None else None
        backlog = scrape.backlog if scrape is not None else None
        return self.sync(view, p95=p95, backlog=backlog)

    def sync(self, view: View, *, p95: float | None, backlog: float | None) -> tuple[int, int]:
        api = hpa_sync(
            now=view.now,
            spec_replicas=view.api.desired,
            status_replicas=view.api.desired,
            ready_replicas=view.api.ready,
            readings=[MetricReading(self.p95_target, p95)],
            config=self.api_config,
            state=self.api_state,
        )
        workers = hpa_sync(
            now=view.now,
            spec_replicas=view.workers.desired,
            status_replicas=view.workers.desired,
            ready_replicas=view.workers.ready,
            readings=[MetricReading(self.backlog_target, backlog)],
            config=self.worker_config,
            state=self.worker_state,
        )
        self.api_state, self.worker_state = api.state, workers.state
        return api.desired, workers.desired


class Keda(Hpa):
    """KEDA-style: a ScaledObject per component polls every :data:`KEDA_POLL_S` (the
    Redis scaler reads the backlog, the Prometheus scaler the p95) and the HPA it owns
    reads the polled values every :data:`HPA_SYNC_S`."""

    name = "keda"

    def __init__(self, plant: PlantConfig) -> None:
        super().__init__(plant)
        self.keda = KedaConfig(polling_interval_seconds=round(KEDA_POLL_S))
        self.p95_poll = KedaState()
        self.backlog_poll = KedaState()

    def act(self, view: View) -> tuple[int, int]:
        if is_multiple(view.elapsed, KEDA_POLL_S):
            scrape = view.scrape
            p95 = scrape.p95_ms if scrape is not None else None
            self.p95_poll = keda_poll(
                now=view.now, value=p95, failed=p95 is None, config=self.keda, state=self.p95_poll
            )
            self.backlog_poll = keda_poll(
                now=view.now,
                value=view.backlog,
                failed=False,
                config=self.keda,
                state=self.backlog_poll,
            )
        if not is_multiple(view.elapsed, HPA_SYNC_S):
            return view.api.desired, view.workers.desired
        p95 = keda_metric(state=self.p95_poll, config=self.keda, target=self.p95_target.value)
        backlog = keda_metric(
            state=self.backlog_poll, config=self.keda, target=self.backlog_target.average_value
        )
        return self.sync(view, p95=p95, backlog=backlog)


CONTROLLERS: dict[str, type[Retention] | type[Hpa] | type[Keda]] = {
    "retention": Retention,
    "hpa": Hpa,
    "keda": Keda,
}
