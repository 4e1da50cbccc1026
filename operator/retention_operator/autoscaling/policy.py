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
3. The model recommends a count: workers on drain time (:mod:`.workers`), the API
   on latency against per-replica load (:mod:`.api`). Both compare with the
   *desired* replicas, which count pods still starting, so capacity on its way is
   not asked for twice; both have hysteresis.
4. Scale-down stabilization (the highest recommendation of the window), the
   scale-up rate limit, then min/max.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from retention_operator import names
from retention_operator.autoscaling import api, workers
from retention_operator.autoscaling.config import (
    ApiPolicyConfig,
    ScaleUpLimit,
    ScalingConfig,
    WorkerPolicyConfig,
)
from retention_operator.autoscaling.limits import clamp, limit_scale_up, stabilize_down
from retention_operator.autoscaling.rates import counter_rate, gauge_slope, values_since
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import (
    Decision,
    Direction,
    Kind,
    PolicyState,
    direction_of,
    kind_of,
)

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
# Lookback of the request-rate slope: one Prometheus scrape.
SLOPE_LOOKBACK_SECONDS = 15.0


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
    guards = _Guards("the API", config)
    state = _track_ready(state or PolicyState(), now=now, ready=replicas.ready)
    if paused or not config.enabled:
        return _unchanged(guards, replicas, state, paused=paused)
    latest = history.latest()
    if latest is None or latest.p95_ms is None or latest.rps is None:
        return _missing(guards, replicas=replicas, state=state, what="p95 or request rate")
    if now - latest.at > config.stale_after_seconds:
        return _missing(guards, replicas=replicas, state=state, what="fresh p95")
    target = float(config.target_p95_milliseconds)
    state = _learn_api(state, sample=latest, ready=replicas.ready, target=target)
    capacity = state.capacity
    if capacity is None or capacity <= 0:
        # Signals are there but say nothing about capacity yet (an idle API): hold, as on
        # missing data, without reporting a signal missing.
        return _missing(guards, replicas=replicas, state=state, what="API capacity", signal=False)
    slope = gauge_slope(history, _rps, lookback=SLOPE_LOOKBACK_SECONDS)
    up_demand = api.demand_up(rps=latest.rps, slope=slope) + api.drain_demand(
        rps=latest.rps, p95_ms=latest.p95_ms, target_ms=target
    )
    recommendation = api.recommend(
        up_demand=up_demand, demand=latest.rps, capacity=capacity, current=replicas.desired
    )
    why = (
        f"{latest.rps:.0f} req/s (rising to {up_demand:.0f}) at {capacity:.0f} req/s per "
        f"replica, p95 {latest.p95_ms:.0f} ms against a target of {target:.0f} ms"
    )
    return _settle(
        guards, now=now, replicas=replicas, recommendation=recommendation, state=state, why=why
    )


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
    guards = _Guards("the workers", config)
    state = _track_ready(state or PolicyState(), now=now, ready=replicas.ready)
    if paused or not config.enabled:
        return _unchanged(guards, replicas, state, paused=paused)
    latest = history.latest()
    if latest is None or latest.backlog is None:
        return _missing(guards, replicas=replicas, state=state, what="queue backlog")
    if now - latest.at > config.stale_after_seconds:
        return _missing(guards, replicas=replicas, state=state, what="fresh backlog")
    arrivals = counter_rate(history, _arrivals, window=RATE_WINDOW_SECONDS)
    state = _learn_workers(state, history=history, now=now, ready=replicas.ready, config=config)
    throughput = state.capacity or config.jobs_per_worker_per_second
    drain = workers.drain_seconds(
        target_drain=config.target_drain_seconds,
        target_wait=config.target_queue_wait_seconds,
        waited=latest.queue_wait_s,
    )
    needed = workers.workers_needed(
        arrival_rate=arrivals or 0.0,
        backlog=latest.backlog,
        throughput=throughput,
        drain_seconds=drain,
    )
    recommendation = workers.recommend(needed=needed, current=replicas.desired)
    if arrivals is None:
        # Without an arrival rate the backlog alone is a floor, good for scaling up only.
        recommendation = max(recommendation, replicas.desired)
    recommendation = _scale_to_zero(
        recommendation,
        current=replicas.desired,
        backlog=latest.backlog,
        arrivals=arrivals,
        config=config,
    )
    waited = "" if latest.queue_wait_s is None else f", the oldest {latest.queue_wait_s:.0f} s,"
    why = (
        f"{arrivals or 0.0:.0f} jobs/s arriving and {latest.backlog:.0f} queued{waited} need "
        f"{needed:.1f} workers at {throughput:.0f} jobs/s each to drain within {drain:.0f} s"
    )
    return _settle(
        guards, now=now, replicas=replicas, recommendation=recommendation, state=state, why=why
    )


# --- Steps shared by both components -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Guards:
    """What both components share: the name in reasons and the shared scaling fields."""

    component: str
    config: ScalingConfig


def _unchanged(
    guards: _Guards, replicas: Replicas, state: PolicyState, *, paused: bool
) -> Decision:
    """Paused: keep the current replicas untouched. Disabled: only bring them within
    the bounds."""
    current, config = replicas.desired, guards.config
    if paused:
        reason = f"Kept {guards.component} at {current} replicas: autoscaling is paused."
        return _plain(current, reason, "none", state, kind="Paused")
    desired = clamp(current, low=config.min_replicas, high=config.max_replicas)
    direction = direction_of(current=current, desired=desired)
    if direction == "none":
        reason = f"Kept {guards.component} at {current} replicas: autoscaling is disabled."
    else:
        reason = (
            f"Scaled to {desired} replicas from {current}: autoscaling is disabled, "
            f"and replicas are kept within [{config.min_replicas}, {config.max_replicas}]."
        )
    return _plain(desired, reason, direction, state, kind="Disabled")


def _plain(
    desired: int, reason: str, direction: Direction, state: PolicyState, *, kind: Kind
) -> Decision:
    return Decision(
        desired=desired,
        reason=reason,
        direction=direction,
        recommendation=None,
        state=state,
        kind=kind,
    )


def _missing(
    guards: _Guards, *, replicas: Replicas, state: PolicyState, what: str, signal: bool = True
) -> Decision:
    """Hold on missing or stale data: never lower replicas; raise to the fallback after
    enough failed ticks in a row; bring replicas within bounds. ``signal``: whether a
    signal was missing (False when the signals were there but could not be used)."""
    config = guards.config
    failed = state.failed_ticks + 1
    state = replace(state, failed_ticks=failed)
    held = clamp(replicas.desired, low=config.min_replicas, high=config.max_replicas)
    fallback = config.fallback_replicas
    kind: Kind | None = None
    if fallback is not None and failed >= config.fallback_after_failed_ticks and fallback > held:
        desired = clamp(fallback, low=config.min_replicas, high=config.max_replicas)
        why = f"no {what} for {failed} ticks, so the fallback of {fallback} replicas applies"
        kind = "Fallback"
    else:
        desired = held
        why = f"no {what} for {failed} ticks, and missing data never scales down"
    return _decision(
        guards,
        replicas=replicas,
        desired=desired,
        recommendation=None,
        state=state,
        why=why,
        kind=kind,
        missing=what if signal else None,
    )


def _settle(
    guards: _Guards,
    *,
    now: float,
    replicas: Replicas,
    recommendation: int,
    state: PolicyState,
    why: str,
) -> Decision:
    """Pass a recommendation through stabilization, the scale-up limit and bounds."""
    config = guards.config
    low, high = config.min_replicas, config.max_replicas
    window = config.scale_down_stabilization_seconds
    current = replicas.desired
    # A fresh state (first tick, or an operator restart) counts the current replicas
    # as recommended now, so that a restart never scales down before a full window.
    history = state.recommendations or ((now, current),)
    stabilized, recommendations = stabilize_down(
        now=now,
        recommendation=recommendation,
        current=current,
        window=window,
        recommendations=history,
    )
    limited, scale_ups = limit_scale_up(
        now=now,
        desired=stabilized,
        current=current,
        limit=config.scale_up,
        scale_ups=state.scale_ups,
    )
    desired = clamp(limited, low=low, high=high)
    notes = []
    if stabilized > recommendation:
        notes.append(f"held by the {window:.0f} s scale-down stabilization")
    if limited < stabilized:
        notes.append("limited by the scale-up rate")
    if desired != limited:
        notes.append(f"bounded to [{low}, {high}]")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    state = replace(state, failed_ticks=0, recommendations=recommendations, scale_ups=scale_ups)
    return _decision(
        guards,
        replicas=replicas,
        desired=desired,
        recommendation=recommendation,
        state=state,
        why=f"{why}, so {recommendation} recommended{suffix}",
    )


def _decision(
    guards: _Guards,
    *,
    replicas: Replicas,
    desired: int,
    recommendation: int | None,
    state: PolicyState,
    why: str,
    kind: Kind | None = None,
    missing: str | None = None,
) -> Decision:
    """Word the Decision: one sentence naming the component, the change and why.
    ``kind`` None: the kind of the change (a scale up, down, or a hold)."""
    current = replicas.desired
    direction = direction_of(current=current, desired=desired)
    if direction == "none":
        head = f"Kept {guards.component} at {current} replicas"
    else:
        head = f"Scaled {guards.component} {direction} from {current} to {desired} replicas"
    return Decision(
        desired=desired,
        reason=f"{head}: {why}.",
        direction=direction,
        recommendation=recommendation,
        state=state,
        kind=kind or kind_of(direction),
        missing=missing,
    )


def _track_ready(state: PolicyState, *, now: float, ready: int) -> PolicyState:
    """Note since when the ready count has held, to learn only from steady fleets."""
    if ready == state.ready:
        return state
    return replace(state, ready=ready, ready_since=now)


# --- Learning ----------------------------------------------------------------------------


def _learn_api(state: PolicyState, *, sample: ApiSample, ready: int, target: float) -> PolicyState:
    """Learn the API's per-replica capacity from a new sample taken over a steady fleet.

    The first sample always teaches (there is nothing else to go on); later ones
    only if the ready count held over the whole measurement window.
    """
    if sample.p95_ms is None or sample.rps is None or ready <= 0:
        return state
    if state.learned_at is not None and sample.at <= state.learned_at:
        return state
    steady = sample.at - state.ready_since >= api.SETTLE_SECONDS
    if state.capacity is not None and not steady:
        return state
    capacity = api.learn_capacity(
        capacity=state.capacity, load=sample.rps / ready, p95_ms=sample.p95_ms, target_ms=target
    )
    return replace(state, capacity=capacity, learned_at=sample.at)


def _learn_workers(
    state: PolicyState,
    *,
    history: SignalHistory[WorkerSample],
    now: float,
    ready: int,
    config: WorkerPolicyConfig,
) -> PolicyState:
    """Learn the per-worker throughput over the rate window, if the fleet held steady."""
    if now - state.ready_since < RATE_WINDOW_SECONDS:
        return state
    estimate = state.capacity or config.jobs_per_worker_per_second
    completed = counter_rate(history, _completed, window=RATE_WINDOW_SECONDS)
    backlogs = values_since(history, _backlog, at=now - RATE_WINDOW_SECONDS)
    busy = bool(backlogs) and min(backlogs) >= ready * estimate
    learned = workers.learn_throughput(
        estimate=estimate, completed_rate=completed, ready=ready, busy=busy
    )
    return replace(state, capacity=learned)


def _scale_to_zero(
    recommendation: int,
    *,
    current: int,
    backlog: float,
    arrivals: float | None,
    config: WorkerPolicyConfig,
) -> int:
    """Apply scale-to-zero, if configured: from zero, wake at the activation backlog;
    recommend zero while the queue is empty and nothing arrives (the stabilization
    window then delays it); otherwise keep at least one worker."""
    if not config.scale_to_zero:
        return recommendation
    if backlog >= config.activation_backlog:
        return max(recommendation, 1)
    if current == 0 or (backlog <= 0 and arrivals is not None and arrivals <= 0):
        return 0
    return max(recommendation, 1)


def _rps(sample: ApiSample) -> float | None:
    return sample.rps


def _arrivals(sample: WorkerSample) -> float | None:
    return sample.arrivals_total


def _completed(sample: WorkerSample) -> float | None:
    return sample.completed_total


def _backlog(sample: WorkerSample) -> float | None:
    return sample.backlog
