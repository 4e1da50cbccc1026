"""API sizing on a model of p95 latency against per-replica load.

The ratio rule (replicas * p95 / target) treats latency as proportional to
load, but latency is flat at low load and climbs steeply near saturation, so
the rule overshoots, undershoots and flaps. Here latency is modelled as a
function of per-replica load (requests per second per ready replica), and the
model is kept as one learned number: the *capacity*, the per-replica load at
which p95 meets the target. Replicas = request rate / (capacity * UTILISATION).

The request rate is a linear signal of demand, so it sizes the fleet in one
step; p95 corrects the capacity. A sample under the target at a load near the
capacity says one replica can take more: raise the capacity towards
``load * (1 + LEARN_GAIN * (1 - p95 / target))``. A sample over the target says
less: lower it to ``load * sqrt(target / p95)``, unless the load was already past
the capacity, where a queue explains the latency. Far below the capacity a low
p95 says nothing, so it is ignored there. A queue built up in overload is
drained on top (:func:`drain_demand`).

Prometheus averages the request rate over a window (a minute), so after a
change the rate lags; the upward demand extrapolates the rate's slope by
:data:`LEAD_SECONDS` (the half window, a scrape and a pod's start-up).
"""

from __future__ import annotations

import math

# Plan each replica at this share of its capacity: near saturation p95 climbs
# steeply, and seconds busier than the minute's mean must stay under the target.
UTILISATION = 0.9
# Gain of the upward learning step; +25 % per sample at most.
LEARN_GAIN = 0.25
# A sample teaches about the capacity only at a load of at least this share of it.
LEARN_NEAR = 0.7
# How far ahead the upward demand extrapolates the request rate's slope.
LEAD_SECONDS = 60.0
# Seconds of steady ready replicas before a sample may teach (window + scrape).
SETTLE_SECONDS = 75.0
# Time in which a queue built up in overload should empty.
DRAIN_SECONDS = 30.0
# Scale down only to a count that would run at most this share of the capacity.
DOWN_UTILISATION = 0.8


def learn_capacity(
    *, capacity: float | None, load: float, p95_ms: float, target_ms: float
) -> float | None:
    """The per-replica capacity after one (load, p95) observation; see the module doc.

    ``load`` is requests per second per ready replica. Returns ``capacity``
    unchanged when the observation carries no information.
    """
    if load <= 0:
        return capacity
    if p95_ms <= target_ms:
        if capacity is not None and load < LEARN_NEAR * capacity:
            return capacity
        candidate = load * (1 + LEARN_GAIN * (1 - p95_ms / target_ms))
        return candidate if capacity is None else max(capacity, candidate)
    if capacity is not None and load > capacity:
        return capacity
    candidate = load * math.sqrt(target_ms / p95_ms)
    return candidate if capacity is None else min(capacity, candidate)


def demand_up(*, rps: float, slope: float | None) -> float:
    """The request rate to size for when scaling up: the measured rate, plus its
    rising slope over :data:`LEAD_SECONDS` (a falling slope is ignored)."""
    return rps + max(slope or 0.0, 0.0) * LEAD_SECONDS


def drain_demand(*, rps: float, p95_ms: float, target_ms: float) -> float:
    """Extra requests per second to empty a queue built up in overload within
    :data:`DRAIN_SECONDS`: about ``rps * (p95 - target)`` requests wait beyond the
    target, so ``rps * (p95 - target) / DRAIN_SECONDS``; 0 under the target."""
    excess_s = max(p95_ms - target_ms, 0.0) / 1000
    return rps * excess_s / DRAIN_SECONDS


def recommend(*, up_demand: float, demand: float, capacity: float, current: int) -> int:
    """Whole replicas: up to carry ``up_demand`` at :data:`UTILISATION` of ``capacity``
    when that is more than ``current``; down only to a count that runs at most
    :data:`DOWN_UTILISATION` of the capacity at ``demand``; otherwise ``current``."""
    up = math.ceil(up_demand / (capacity * UTILISATION))
    if up > current:
        return up
    down = math.ceil(demand / (capacity * DOWN_UTILISATION))
    return down if down < current else current
