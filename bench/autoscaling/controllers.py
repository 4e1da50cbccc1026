"""The policies under test, each at its own cadence, fed by the plant.

Each controller is called every plant step with a :class:`View` of what the
cluster, Redis and Prometheus show at that moment, and returns the desired API
and worker replicas:

* ``retention``: the operator's own policy (``decide_api`` and ``decide_workers``
  of :mod:`retention_operator.autoscaling.policy`) every 5 s, with its shipped
  defaults: it learns the plant, it is told nothing about it. The forecast is on,
  as shipped.
* ``retention-reactive``: the same with the forecast off (``forecast: false``), to
  show what the forecast adds; not a baseline.
* ``hpa``: two HPAs without ``spec.behavior`` (upstream's legacy path), syncing
  every 15 s: the API on its request rate per pod, the workers on the stream's
  consumer-group lag per worker, both External ``AverageValue`` metrics served by
  prometheus-adapter from Prometheus's last scrape (the lag through redis_exporter's
  ``redis_stream_group_lag``).
* ``hpa-behavior``: the same HPAs with the documented default behavior written out.
* ``keda``: two ScaledObjects (KEDA's defaults: a 30 s polling interval, fresh reads
  on every HPA request): a ``redis-streams`` trigger with ``lagCount`` for the
  workers, read from Redis itself, and a ``prometheus`` trigger on the API's request
  rate; the HPAs KEDA makes take the legacy path.
* ``keda-cached``: the same with ``useCachedMetrics: true``: the HPA sees the value
  of the last poll.

The baselines' targets come from a load test of one pod at the start of the trace
(:func:`careful_targets`), as a careful user sets them; README.md says why each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from bench.autoscaling.hpa import (
    DOCUMENTED_DEFAULTS,
    AverageValue,
    Behavior,
    ExternalMetric,
    HorizontalController,
    HpaSpec,
    Scale,
)
from bench.autoscaling.keda import ScaledObject, ScaledObjectSpec, Trigger
from bench.autoscaling.plant import Cadence, PlantConfig, Scrape, load_test
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
# The API's target: this share of the highest request rate one pod served within the
# p95 target in the load test; the rest is headroom for the HPA's reaction (a 15 s
# sync, a minute of rate window, 30 s of start-up).
API_TARGET_SHARE = 0.8
# The workers' lag per worker: the HPA holds about this much lag per worker, a wait of
# lag / throughput; this share of the wait target leaves the rest for the reaction.
WORKER_WAIT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Pods:
    """A Deployment as the API server shows it."""

    desired: int
    ready: int

    def scale(self) -> Scale:
        """The scale subresource: every pod that exists counts in ``status.replicas``."""
        return Scale(
            spec_replicas=self.desired, status_replicas=self.desired, ready_replicas=self.ready
        )


@dataclass(frozen=True, slots=True)
class View:
    """What a controller can see at ``now``: the Deployments, Redis (fresh: the backlog,
    the lag, the counters and the age of the oldest waiting job), Prometheus (its last
    scrape)."""

    now: float
    elapsed: float
    api: Pods
    workers: Pods
    backlog: float
    lag: float
    arrivals_total: float
    completed_total: float
    oldest_wait: float
    scrape: Scrape | None


class Controller(Protocol):
    name: str

    def act(self, view: View) -> tuple[int, int]:
        """Desired (API, worker) replicas after this step."""
        ...


@dataclass(frozen=True, slots=True)
class CarefulTargets:
    """The baselines' targets: requests per second per API pod, lag per worker."""

    api_rps_per_pod: float
    worker_lag_per_worker: float


def careful_targets(plant: PlantConfig) -> CarefulTargets:
    """Targets set from a load test of one pod at the start (:func:`.plant.load_test`):
    :data:`API_TARGET_SHARE` of the rate one pod serves within the p95 target (of its
    saturation rate when no load meets it), and the lag :data:`WORKER_WAIT_SHARE` of the
    wait target's worth of one worker's throughput."""
    test = load_test(plant)
    capacity = test.api_rps_at_target or test.api_saturation_rps
    return CarefulTargets(
        api_rps_per_pod=API_TARGET_SHARE * capacity,
        worker_lag_per_worker=WORKER_WAIT_SHARE
        * test.worker_jobs_per_s
        * plant.target_queue_wait_s,
    )


class Retention:
    """The operator's policy every :data:`RETENTION_TICK_S`, with its shipped defaults."""

    name = "retention"
    forecast: ClassVar[bool] = True

    def __init__(self, plant: PlantConfig) -> None:
        self.api_config = ApiPolicyConfig(
            forecast=self.forecast,
            min_replicas=plant.api_min_replicas,
            max_replicas=plant.api_max_replicas,
            target_p95_milliseconds=max(round(plant.target_p95_ms), 1),
        )
        wait = max(round(plant.target_queue_wait_s), 1)
        self.worker_config = WorkerPolicyConfig(
            forecast=self.forecast,
            min_replicas=plant.worker_min_replicas,
            max_replicas=plant.worker_max_replicas,
            target_queue_wait_seconds=wait,
            target_drain_seconds=min(max(round(plant.target_drain_s), 1), wait),
            scale_to_zero=plant.worker_min_replicas == 0,
        )
        self.api_history: SignalHistory[ApiSample] = SignalHistory()
        self.worker_history: SignalHistory[WorkerSample] = SignalHistory()
        self.api_state: PolicyState | None = None
        self.worker_state: PolicyState | None = None
        self.reasons: list[tuple[float, str]] = []
        self._tick = Cadence(RETENTION_TICK_S)

    def act(self, view: View) -> tuple[int, int]:
        if not self._tick.due(view.elapsed):
            return view.api.desired, view.workers.desired
        if view.scrape is not None:
            self.api_history.append(
                ApiSample(
                    at=view.scrape.at,
                    p95_ms=view.scrape.p95_ms,
                    rps=view.scrape.rps,
                    rps_recent=view.scrape.rps_last,
                )
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


class RetentionReactive(Retention):
    """:class:`Retention` with the forecast off: the reactive policy alone."""

    name = "retention-reactive"
    forecast = False


class Hpa:
    """Two HPAs syncing every :data:`HPA_SYNC_S`, without ``spec.behavior``: the API on
    its request rate per pod, the workers on the lag per worker, both from Prometheus."""

    name = "hpa"
    behavior: ClassVar[Behavior | None] = None

    def __init__(self, plant: PlantConfig) -> None:
        targets = careful_targets(plant)
        self.api = HorizontalController(
            HpaSpec(
                min_replicas=plant.api_min_replicas,
                max_replicas=plant.api_max_replicas,
                metrics=(ExternalMetric("rps", AverageValue(targets.api_rps_per_pod)),),
                behavior=self.behavior,
            )
        )
        # Without the alpha HPAScaleToZero gate an HPA's minReplicas is at least 1.
        self.workers = HorizontalController(
            HpaSpec(
                min_replicas=max(plant.worker_min_replicas, 1),
                max_replicas=plant.worker_max_replicas,
                metrics=(ExternalMetric("lag", AverageValue(targets.worker_lag_per_worker)),),
                behavior=self.behavior,
            )
        )
        self._sync = Cadence(HPA_SYNC_S)

    def act(self, view: View) -> tuple[int, int]:
        if not self._sync.due(view.elapsed):
            return view.api.desired, view.workers.desired
        scrape = view.scrape
        rps = scrape.rps if scrape is not None else None
        lag = scrape.lag if scrape is not None else None
        api = self.api.reconcile(now=view.now, scale=view.api.scale(), values={"rps": rps})
        workers = self.workers.reconcile(
            now=view.now, scale=view.workers.scale(), values={"lag": lag}
        )
        return api, workers


class HpaBehavior(Hpa):
    """:class:`Hpa` with the documented default behavior set explicitly."""

    name = "hpa-behavior"
    behavior = DOCUMENTED_DEFAULTS


class Keda:
    """Two ScaledObjects: KEDA's loop every :data:`KEDA_POLL_S`, its HPAs every
    :data:`HPA_SYNC_S` on what its metrics server serves (fresh reads by default)."""

    name = "keda"
    cached: ClassVar[bool] = False

    def __init__(self, plant: PlantConfig) -> None:
        targets = careful_targets(plant)
        self.api = ScaledObject(
            ScaledObjectSpec(
                min_replica_count=plant.api_min_replicas,
                max_replica_count=plant.api_max_replicas,
                triggers=(Trigger("rps", target=targets.api_rps_per_pod),),
                use_cached_metrics=self.cached,
            )
        )
        self.workers = ScaledObject(
            ScaledObjectSpec(
                min_replica_count=plant.worker_min_replicas,
                max_replica_count=plant.worker_max_replicas,
                triggers=(Trigger("lag", target=targets.worker_lag_per_worker),),
                use_cached_metrics=self.cached,
            )
        )
        self._poll = Cadence(KEDA_POLL_S)
        self._sync = Cadence(HPA_SYNC_S)

    def act(self, view: View) -> tuple[int, int]:
        def rps(_: str) -> float:
            # The Prometheus scaler's ignoreNullValues (default true): no data reads as 0.
            scrape = view.scrape
            return scrape.rps if scrape is not None and scrape.rps is not None else 0.0

        def lag(_: str) -> float:
            return view.lag  # redis-streams reads XINFO GROUPS itself

        api, workers = view.api.desired, view.workers.desired
        if self._poll.due(view.elapsed):
            api = _or(self.api.poll(now=view.now, replicas=api, read=rps), api)
            workers = _or(self.workers.poll(now=view.now, replicas=workers, read=lag), workers)
        if self._sync.due(view.elapsed):
            api_scale = Pods(api, min(view.api.ready, api)).scale()
            worker_scale = Pods(workers, min(view.workers.ready, workers)).scale()
            api = self.api.sync(now=view.now, scale=api_scale, read=rps)
            workers = self.workers.sync(now=view.now, scale=worker_scale, read=lag)
        return api, workers


class KedaCached(Keda):
    """:class:`Keda` with ``useCachedMetrics: true`` on every trigger."""

    name = "keda-cached"
    cached = True


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


CONTROLLERS: dict[str, type[Retention] | type[Hpa] | type[Keda]] = {
    "retention": Retention,
    "retention-reactive": RetentionReactive,
    "hpa": Hpa,
    "hpa-behavior": HpaBehavior,
    "keda": Keda,
    "keda-cached": KedaCached,
}
# Ours with a part turned off: shown beside ours, never judged as a competitor.
VARIANTS = ("retention-reactive",)
BASELINES = tuple(name for name in CONTROLLERS if name != "retention" and name not in VARIANTS)
# What the judgement needs: ours and every baseline.
JUDGED = {name: cls for name, cls in CONTROLLERS.items() if name not in VARIANTS}
