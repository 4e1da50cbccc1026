"""The autoscaling policy: pure decisions from replicas, signal history and config.

Public API (the loop and the simulator code against it)::

    decide_api(*, now, replicas, history, config, state=None, paused=False) -> Decision
    decide_workers(*, now, replicas, history, config, state=None, paused=False) -> Decision
    is_paused(*, spec_paused, annotations) -> bool

``decide_api`` takes an :class:`ApiPolicyConfig` and a ``SignalHistory[ApiSample]``,
``decide_workers`` a :class:`WorkerPolicyConfig` and a ``SignalHistory[WorkerSample]``.
``replicas`` is :class:`Replicas` (desired and ready), ``state`` what the previous
Decision returned (None on the first tick). Nothing here does I/O, reads a clock
or keeps globals: equal inputs give equal Decisions. The Decision is the whole
outcome: the replicas to set within the bounds, its kind (``lastDecision``), and
the signal that was missing, if one was; callers only carry it out and report it.

Every tick, in order:

1. Paused: keep the current replicas, whatever they are. Disabled: only bring
   them within min/max.
2. Missing or stale data: keep the current replicas within min/max (never scale
   down); after ``fallback_after_failed_ticks`` such ticks in a row, raise to
   ``fallback_replicas`` if set (a fallback never lowers replicas either).
3. Learn from the new sample, if the fleet held steady: the API's capacity
   (:mod:`.api`), the workers' throughput (:mod:`.workers`).
4. The model asks for demand (:class:`.decisions.Sizing`): the API's request rate
   (with a lead on a rise, the last interval's rate in a surge, and a queue to
   drain), the workers' arrivals and backlog to drain; with the forecast on, at
   least the demand :mod:`.forecast` expects within its lead, as far as its recent
   error lets it be trusted (it learns from the same request rate and arrivals,
   so it only adds to what the reactive policy asks). Both compare with the
   *desired* replicas, which count pods still starting, so capacity on its way is
   not asked for twice; both have hysteresis.
5. Scale-down stabilization (the highest steady demand of the window, sized with
   the current estimate), the scale-up rate limit, then min/max
   (:func:`.decisions.settle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from retention_operator import names
from retention_operator.autoscaling import api, forecast, surges, workers
from retention_operator.autoscaling.config import (
    ApiPolicyConfig,
    ScaleUpLimit,
    ScalingConfig,
    WorkerPolicyConfig,
)
from retention_operator.autoscaling.decisions import Guards, Sizing, missing, settle, unchanged
from retention_operator.autoscaling.limits import replicas_for
from retention_operator.autoscaling.rates import counter_rate, gauge_slope, values_since
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import Decision, PolicyState

__all__ = [
    "ApiPolicyConfig",
    "ApiSample",
    "Decision",
    "PolicyState",
    "Replicas",
    "ScaleUpLimit",
    "ScalingConfig",
    "SignalHistory",
    "WorkerPolicyConfig",
    "WorkerSample",
    "decide_api",
    "decide_workers",
    "is_paused",
]

# Window of the counter rates (arrivals, completions) derived from Redis samples.
RATE_WINDOW_SECONDS = 15.0
# Lookback of the request-rate slope: two Prometheus scrapes (one is mostly noise).
SLOPE_LOOKBACK_SECONDS = 30.0


def is_paused(*, spec_paused: bool, annotations: Mapping[str, str]) -> bool:
    """True if ``spec.paused`` is set or the autoscaling-paused annotation is ``"true"``."""
    value = annotations.get(names.ANNOTATION_AUTOSCALING_PAUSED, "")
    return spec_paused or value.strip().lower() == "true"


def decide_api(
    *,
    now: float,
    replicas: Replicas,
    history: SignalHistory[ApiSample],
    config: ApiPolicyConfig,
    state: PolicyState | None = None,
    paused: bool = False,
) -> Decision:
    """Decide the API's replicas from p95 latency and request rate (see :mod:`.api`)."""
    guards = Guards("the API", config)
    state = _track_ready(state or PolicyState(), now=now, ready=replicas.ready)
    state = _forget_forecast_when_off(state, config=config)
    if paused or not config.enabled:
        return unchanged(guards, replicas, state, paused=paused)
    latest = history.latest()
    if latest is None or latest.p95_ms is None or latest.rps is None:
        return missing(guards, replicas=replicas, state=state, what="p95 or request rate")
    if now - latest.at > config.stale_after_seconds:
        return missing(guards, replicas=replicas, state=state, what="fresh p95")
    target = float(config.target_p95_milliseconds)
    if state.capacity is None:
        prior = api.first_estimate(prior=config.requests_per_replica_per_second)
        state = replace(state, capacity=prior)
    state = _learn_api(state, sample=latest, replicas=replicas, target=target, config=config)
    capacity = state.capacity
    if capacity is None or capacity <= 0:
        # Signals are there but say nothing about capacity yet (an idle API): hold, as on
        # missing data, without reporting a signal missing.
        return missing(guards, replicas=replicas, state=state, what="API capacity", signal=False)
    slope = gauge_slope(history, _rps, lookback=SLOPE_LOOKBACK_SECONDS)
    recent_slope = gauge_slope(history, _rps_recent, lookback=SLOPE_LOOKBACK_SECONDS)
    up = api.demand_up(
        rps=latest.rps, slope=slope, recent=latest.rps_recent, recent_slope=recent_slope
    )
    steady = api.steady_demand(rps=latest.rps, recent=latest.rps_recent)
    bottleneck = state.learned is not None and state.learned.bottleneck
    if not bottleneck:
        up += api.drain_demand(rps=steady, p95_ms=latest.p95_ms, target_ms=target)
    before = state.surges or surges.Surges()
    seen = surges.observe(before, now=now, demand=steady)
    if seen is not before:
        state = replace(state, surges=seen)
    coming = surges.to_hold(seen, now=now, window=config.scale_down_stabilization_seconds)
    up = max(up, coming)
    state = _forecast(state, config=config, at=latest.at, value=latest.rps)
    ahead = _ahead(state, now=now, current=steady)
    up = max(up, ahead)
    per_up, per_down = api.per_replica(capacity)
    sizing = Sizing(
        up=up,
        steady=steady,
        per_up=per_up,
        per_down=per_down,
    )
    why = (
        f"{latest.rps:.0f} req/s (sized for {up:.0f}) at {capacity:.0f} req/s per replica, "
        f"p95 {latest.p95_ms:.0f} ms against a target of {target:.0f} ms"
    )
    if bottleneck:
        why += ", which more replicas would not bring down (something they share is slow)"
    if coming > 0:
        why += f"; the surges seen ask to keep {coming:.0f} req/s ready for the next"
    why += _forecast_why(state, ahead=ahead, current=steady, unit="req/s")
    return settle(guards, now=now, replicas=replicas, sizing=sizing, state=state, why=why)


def decide_workers(
    *,
    now: float,
    replicas: Replicas,
    history: SignalHistory[WorkerSample],
    config: WorkerPolicyConfig,
    state: PolicyState | None = None,
    paused: bool = False,
) -> Decision:
    """Decide the workers' replicas from backlog and job rates (see :mod:`.workers`)."""
    guards = Guards("the workers", config)
    state = _track_ready(state or PolicyState(), now=now, ready=replicas.ready)
    state = _forget_forecast_when_off(state, config=config)
    if paused or not config.enabled:
        return unchanged(guards, replicas, state, paused=paused)
    latest = history.latest()
    if latest is None or latest.backlog is None:
        return missing(guards, replicas=replicas, state=state, what="queue backlog")
    if now - latest.at > config.stale_after_seconds:
        return missing(guards, replicas=replicas, state=state, what="fresh backlog")
    arrivals = counter_rate(history, _arrivals, window=RATE_WINDOW_SECONDS)
    throughput = state.capacity or config.jobs_per_worker_per_second
    state = _forget_ended_surge(
        state, now=now, arrivals=arrivals, throughput=throughput, config=config
    )
    state = _learn_workers(
        state, history=history, now=now, replicas=replicas, arrivals=arrivals, config=config
    )
    throughput = state.capacity or config.jobs_per_worker_per_second
    drain = workers.drain_seconds(
        target_drain=config.target_drain_seconds,
        target_wait=config.target_queue_wait_seconds,
        waited=latest.queue_wait_s,
    )
    up = workers.demand(arrival_rate=arrivals or 0.0, backlog=latest.backlog, drain_seconds=drain)
    backlog = latest.backlog
    left = surges.remaining(state.surges or surges.Surges(), now=now)
    absorbed = left is not None and arrivals is not None and drain >= config.target_drain_seconds
    if absorbed and left is not None and arrivals is not None:
        # A surge like those seen before, ending soon: the queue takes what it can.
        enough = workers.surge_workers(
            arrival_rate=arrivals,
            backlog=backlog,
            throughput=throughput,
            remaining_s=left,
            budget_s=workers.SURGE_WAIT_SHARE * config.target_queue_wait_seconds,
        )
        up = min(up, enough * throughput)
    seen = state.surges or surges.Surges()
    coming = 0.0
    due = surges.to_hold(seen, now=now, window=config.scale_down_stabilization_seconds) > 0
    if due and not _queue_absorbs(seen, throughput=throughput, config=config):
        # Surges the queue cannot take while workers start: workers for the next are kept
        # or brought in before it comes, as for the API; as many as let the queue take the
        # rest of a surge like the longest seen.
        enough = workers.surge_workers(
            arrival_rate=surges.typical_peak(seen),
            backlog=0.0,
            throughput=throughput,
            remaining_s=surges.longest(seen),
            budget_s=workers.SURGE_WAIT_SHARE * config.target_queue_wait_seconds,
        )
        coming = enough * throughput
        up = max(up, coming)
    state = _forecast(state, config=config, at=now, value=arrivals)
    ahead = _ahead(state, now=now, current=arrivals or 0.0)
    up = max(up, ahead)

    def scale_to_zero(count: int, current: int) -> int:
        """From zero, wake at the activation backlog; recommend zero while the queue is
        empty and nothing arrives (the window then delays it); otherwise keep one."""
        if backlog >= config.activation_backlog:
            return max(count, 1)
        if current == 0:
            return 0
        if backlog <= 0 and arrivals is not None and arrivals <= 0:
            return count  # zero once the window no longer remembers any demand
        return max(count, 1)

    sizing = Sizing(
        up=up,
        steady=arrivals or 0.0,
        per_up=throughput,
        per_down=throughput * workers.DOWN_UTILISATION,
        slack=workers.UP_SLACK,
        # Without an arrival rate the backlog alone is a floor, good for scaling up only.
        at_least=replicas.desired if arrivals is None else 0,
        adjust=scale_to_zero if config.scale_to_zero else None,
    )
    waited = "" if latest.queue_wait_s is None else f", the oldest {latest.queue_wait_s:.0f} s,"
    why = (
        f"{arrivals or 0.0:.0f} jobs/s arriving and {backlog:.0f} queued{waited} need "
        f"{up / throughput:.1f} workers at {throughput:.0f} jobs/s each to drain within "
        f"{drain:.0f} s"
    )
    if coming > 0:
        why += f"; the surges seen ask to keep {coming:.0f} jobs/s of workers for the next"
    why += _forecast_why(state, ahead=ahead, current=arrivals or 0.0, unit="jobs/s")
    return settle(guards, now=now, replicas=replicas, sizing=sizing, state=state, why=why)


def _forecast(
    state: PolicyState, *, config: ScalingConfig, at: float, value: float | None
) -> PolicyState:
    """Feed the forecast this tick's demand sample (nothing with the forecast off)."""
    if not config.forecast:
        return state
    learned = forecast.observe(state.forecast or forecast.Forecast(), at=at, value=value)
    return replace(state, forecast=learned)


def _forget_forecast_when_off(state: PolicyState, *, config: ScalingConfig) -> PolicyState:
    """With the forecast off, whatever the tick decides (paused, missing data included),
    none is kept: the status shows none from this tick on."""
    if config.forecast or state.forecast is None:
        return state
    return replace(state, forecast=None)


def _ahead(state: PolicyState, *, now: float, current: float) -> float:
    """The demand the forecast asks to be ready for (:func:`.forecast.ready_for`) when it
    asks for more than ``current``; 0 otherwise, so that it never takes the place of a
    smaller demand the model chose (a surge the workers' queue absorbs)."""
    if state.forecast is None:
        return 0.0
    wanted = forecast.ready_for(
        state.forecast, now=now, current=current, lead=forecast.LEAD_SECONDS
    )
    return wanted if wanted > current else 0.0


def _forecast_why(state: PolicyState, *, ahead: float, current: float, unit: str) -> str:
    """The reason's clause for a forecast that raised the demand; empty otherwise."""
    if state.forecast is None or ahead <= current:
        return ""
    return (
        f"; the daily shape expects {ahead:.0f} {unit} within "
        f"{forecast.LEAD_SECONDS:.0f} s, so that is brought in ahead"
    )


def _forget_ended_surge(
    state: PolicyState,
    *,
    now: float,
    arrivals: float | None,
    throughput: float,
    config: WorkerPolicyConfig,
) -> PolicyState:
    """Follow surges of arrivals (:mod:`.surges`); when one has just ended and the queue
    can absorb the next like it until workers start (:func:`.workers.queue_absorbs`), the
    scale-down window forgets its arrivals: workers held for a surge that is over are
    then only cost."""
    if arrivals is None:
        return state
    before = state.surges or surges.Surges()
    after = surges.observe(before, now=now, demand=arrivals)
    if after is before:
        return state  # Nothing seen (a queue at rest): the state as it was, not a copy.
    state = replace(state, surges=after)
    if not surges.just_ended(before, after) or after.base is None:
        return state
    if not _queue_absorbs(after, throughput=throughput, config=config):
        return state
    level = surges.END * after.base
    kept = tuple((at, value) for at, value in state.recommendations if value <= level)
    return replace(state, recommendations=kept or ((now, arrivals),))


def _queue_absorbs(seen: surges.Surges, *, throughput: float, config: WorkerPolicyConfig) -> bool:
    """:func:`.workers.queue_absorbs` for a surge like those ``seen``."""
    return workers.queue_absorbs(
        peak=surges.typical_peak(seen),
        base=seen.base,
        throughput=throughput,
        min_replicas=config.min_replicas,
        target_wait=config.target_queue_wait_seconds,
    )


def _track_ready(state: PolicyState, *, now: float, ready: int) -> PolicyState:
    """Note since when the ready count has held, to learn only from steady fleets."""
    if ready == state.ready:
        return state
    return replace(state, ready=ready, ready_since=now)


# --- Learning ----------------------------------------------------------------------------


def _learn_api(
    state: PolicyState,
    *,
    sample: ApiSample,
    replicas: Replicas,
    target: float,
    config: ApiPolicyConfig,
) -> PolicyState:
    """Learn from a new sample taken over a steady fleet (see :func:`.api.learn`).

    Without an estimate the first sample teaches (there is nothing else to go on);
    later ones only if the ready count held over the whole measurement window. A probe
    needs room to shrink: none at the minimum replicas.
    """
    ready = replicas.ready
    if sample.p95_ms is None or sample.rps is None or ready <= 0:
        return state
    if state.learned_at is not None and sample.at <= state.learned_at:
        return state
    steady = sample.at - state.ready_since >= api.SETTLE_SECONDS
    recent = sample.rps_recent
    if recent is not None and abs(recent - sample.rps) > api.EVEN_LOAD * sample.rps:
        # The load changed within the window: its mean and its p95 describe different loads.
        steady = False
    if state.capacity is not None and not steady:
        return state
    before = replace(state.learned or api.Learned(capacity=None), capacity=state.capacity)
    learned = api.learn(before, load=sample.rps / ready, p95_ms=sample.p95_ms, target_ms=target)
    probed = (
        learned.capacity is not None
        and before.capacity is not None
        and learned.capacity > before.capacity
        and not learned.confirmed
    )
    if probed and replicas.desired <= config.min_replicas:
        learned = replace(learned, capacity=before.capacity)
    return replace(state, capacity=learned.capacity, learned=learned, learned_at=sample.at)


def _learn_workers(
    state: PolicyState,
    *,
    history: SignalHistory[WorkerSample],
    now: float,
    replicas: Replicas,
    arrivals: float | None,
    config: WorkerPolicyConfig,
) -> PolicyState:
    """Learn the per-worker throughput over the rate window, if the fleet held steady
    (see :func:`.workers.learn_throughput`); a probe needs room to shrink."""
    ready = replicas.ready
    if now - state.ready_since < RATE_WINDOW_SECONDS:
        return state
    estimate = state.capacity or config.jobs_per_worker_per_second
    completed = counter_rate(history, _completed, window=RATE_WINDOW_SECONDS)
    backlogs = values_since(history, _backlog, at=now - RATE_WINDOW_SECONDS)
    # Busy throughout: the queue always held at least a second of the work the workers
    # did (at the rate they did it, so that an estimate too high cannot hide it).
    done = (completed or 0.0) if completed is not None else 0.0
    busy = bool(backlogs) and min(backlogs) >= max(min(done, ready * estimate), ready)
    # Only an estimate no measurement ever confirmed is probed: at full use and an empty
    # queue a probe cannot be told from the truth, and would stay.
    stale = state.confirmed_at is None
    near = arrivals is not None and arrivals >= workers.PROBE_WHEN * ready * estimate
    # A probe must shrink the fleet by a worker at least, or it would never be tested.
    shrinks = arrivals is not None and replicas_for(
        arrivals, estimate * workers.PROBE_STEP * workers.DOWN_UTILISATION
    ) < min(replicas.desired, ready)
    may_probe = stale and near and shrinks and replicas.desired > max(config.min_replicas, 1)
    learned, measured = workers.learn_throughput(
        estimate=estimate, completed_rate=completed, ready=ready, busy=busy, may_probe=may_probe
    )
    if learned == state.capacity and not measured:
        return state  # Nothing learned: the state as it was, not a copy.
    return replace(state, capacity=learned, confirmed_at=now if measured else state.confirmed_at)


def _rps(sample: ApiSample) -> float | None:
    return sample.rps


def _rps_recent(sample: ApiSample) -> float | None:
    return sample.rps_recent


def _arrivals(sample: WorkerSample) -> float | None:
    return sample.arrivals_total


def _completed(sample: WorkerSample) -> float | None:
    return sample.completed_total


def _backlog(sample: WorkerSample) -> float | None:
    return sample.backlog
