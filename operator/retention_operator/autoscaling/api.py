"""API sizing on a model of p95 latency against per-replica load, and how it is learned.

The ratio rule (replicas * p95 / target) treats latency as proportional to load,
but latency is flat at low load and climbs steeply near saturation, so the rule
overshoots, undershoots and flaps. Here latency is a function of per-replica load
(requests per second per ready replica), and the model is one learned number: the
*capacity*, the per-replica load at which p95 meets the target. Replicas = demand /
(capacity * UTILISATION). The request rate is a linear signal of demand, so it sizes
the fleet in one step; p95 corrects the capacity.

Learning (:func:`learn`), from samples of a steady fleet, by how far p95 is from
its target (``r = p95 / target``):

* **The knee** (``KNEE_LOW <= r <= 1``, ``r`` taken relative to the floor by
  :func:`equivalent_ratio`): latency responds to load, so the sample says
  where the knee is: the load is the share :func:`knee_share` of the capacity that a
  queue of a few servers is at with that ratio. The estimate moves halfway there.
* **Over the target** (``r > 1``): the capacity is below the load: lowered to the
  share the knee says, by at most half per sample (a queue left by an overload
  inflates p95 beyond what the load alone explains). Unless more replicas did not
  help: over the target again at :data:`BOTTLENECK_LOAD` of the last per-replica load
  or less, with a p95 no better (over :data:`BOTTLENECK_P95` of it), at a load the
  replicas took under the target before (:data:`BOTTLENECK_SHARE` of the capacity
  trusted then). Then the replicas
  are not the cause (a database they share, say): the capacity goes back to the last
  one trusted under the target, and the policy stops adding replicas for the latency
  until it is back under the target.
  When p95 barely follows the load between two knee samples (elasticity under
  :data:`ELASTIC_FLOOR`), it is a floor (a release made every request slower, say):
  it is noted as the floor, and the capacity stands (otherwise the estimate would
  fall with the load, and the load per replica with it, without end).
* **Flat** (``r < KNEE_LOW``): the latency says only that the knee is further on. When
  the fleet runs near the estimate, it is probed: the estimate grows (by
  :data:`PROBE_FAR`, :data:`PROBE_MID` or :data:`PROBE_NEAR` as p95 is nearer its
  floor or further off it), the fleet shrinks at once, and the next steady sample
  tells more. Never past a load seen over the target.

A prior (``requestsPerReplicaPerSecond``) only starts this; without one the first
sample sets the estimate. Because the window of the scale-down stabilization holds
demand, not replicas, a new estimate re-sizes the fleet at the next tick.

Prometheus averages the request rate over a window (a minute), so after a change
the rate lags; the upward demand extrapolates the rate's slope by
:data:`LEAD_SECONDS`, and takes the rate of the last scrape interval when that is
clearly higher (a surge the minute's mean still hides).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, replace

# Plan each replica at this share of its capacity: seconds busier than the minute's
# mean must stay under the target.
UTILISATION = 0.88
# Scale down only to a count that would run at most this share of the capacity.
DOWN_UTILISATION = 0.85
# Seconds of steady ready replicas before a sample may teach (window + scrape).
SETTLE_SECONDS = 75.0
# How far ahead the upward demand extrapolates the request rate's slope: the half of
# the rate window by which its mean lags, a scrape, a tick and a pod's start-up.
LEAD_SECONDS = 90.0
# How far ahead the last scrape interval's rate is projected: it lags by half an
# interval; then a tick and a pod's start-up.
RECENT_LEAD_SECONDS = 45.0
# A rise of the rate under this share of the rate is noise, not a trend.
SLOPE_NOISE = 0.1
# The last scrape interval's rate counts as a surge once it is this much over the mean.
SURGE_RATIO = 1.2
# Time in which a queue built up in overload should empty.
DRAIN_SECONDS = 15.0
# Latency ratios (p95 / target) from which a sample locates the knee.
KNEE_LOW = 0.35
# (p95 / target, load / capacity) along the knee of a queue of four servers, the
# common shape (one server bends earlier, sixteen later): a sample at ratio r is at
# knee_share(r) of the capacity. Low on the knee the shapes differ most; there the
# shares are the lowest of the shapes (sharp knees are underestimated, then probed).
KNEE = (
    (0.35, 0.7),
    (0.4, 0.8),
    (0.5, 0.88),
    (0.6, 0.925),
    (0.8, 0.975),
    (1.0, 1.0),
    (1.5, 1.03),
    (2.5, 1.055),
)
# Weight of a knee sample in the estimate.
KNEE_GAIN = 0.5
# Over target twice in a row, the second time at this share of the per-replica load or
# less and with a p95 no better than this share of the first: more replicas did not help.
BOTTLENECK_LOAD = 0.8
BOTTLENECK_P95 = 0.8
# ...and only at a per-replica load within this share of the last capacity trusted.
BOTTLENECK_SHARE = 0.9
# Probe only while the fleet runs at this share of the estimate or more.
PROBE_WHEN = 0.7
# Probe steps: by how far p95 is off its floor (up to PROBE_BANDS[0] times it: far from
# the knee; up to PROBE_BANDS[1]: nearer; beyond: near).
PROBE_FAR = 1.5
PROBE_MID = 1.25
PROBE_NEAR = 1.1
PROBE_BANDS = (1.05, 1.15)
# Two knee samples at least this far apart in load (log) show how p95 follows load;
# on the knee it does strongly (elasticity over 1); under ELASTIC_FLOOR, it is a floor.
ELASTIC_STEP = 0.08
ELASTIC_FLOOR = 0.6
# Where the floor of the knee of KNEE sits, as a share of the target.
KNEE_FLOOR = 0.3
# A floor seen at up to this share of the load is far enough down the curve to compare.
FLOOR_LOAD = 0.5
# A sample teaches only if the load was even over its window: the last interval's
# rate within this share of the window's mean.
EVEN_LOAD = 0.15
# Without a prior, the first flat sample is taken to run at this share of the capacity:
# high, so that the estimate starts low (probes raise a low estimate safely).
FIRST_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Learned:
    """What the API's latency has taught: the capacity estimate and its evidence.

    ``capacity``: requests per second per replica at the p95 target. ``floor_ms``: the
    lowest steady p95, ``floor_load`` the per-replica load it was
    seen at. ``upper``: the lowest per-replica load seen
    over the target by the replicas' doing. ``confirmed``: whether a sample on the knee
    (not a probe or a prior) set the capacity; ``trusted`` the capacity the last such
    sample under the target gave. ``over``: (per-replica load, p95) of the last sample
    over the target; ``knee`` of the most loaded one on the knee since the last that
    showed a floor. ``bottleneck``: more replicas did not bring the latency down.
    """

    capacity: float | None
    floor_ms: float | None = None
    floor_load: float | None = None
    upper: float | None = None
    confirmed: bool = False
    trusted: float | None = None
    over: tuple[float, float] | None = None
    knee: tuple[float, float] | None = None
    bottleneck: bool = False


def knee_share(ratio: float) -> float:
    """The share of its capacity a replica runs at when its p95 is ``ratio`` of the
    target, along :data:`KNEE` (interpolated; held at the ends)."""
    ratios = [r for r, _ in KNEE]
    if ratio <= ratios[0]:
        return KNEE[0][1]
    if ratio >= ratios[-1]:
        return KNEE[-1][1]
    index = bisect_left(ratios, ratio)
    (r0, s0), (r1, s1) = KNEE[index - 1], KNEE[index]
    return s0 + (s1 - s0) * (ratio - r0) / (r1 - r0)


def floor_known(learned: Learned, *, load: float) -> float | None:
    """The floor, if it was seen at a far lighter per-replica load than ``load`` (at most
    :data:`FLOOR_LOAD` of it); a floor seen near the load is no floor at all."""
    floor, at = learned.floor_ms, learned.floor_load
    if floor is None or at is None or at > FLOOR_LOAD * load:
        return None
    return floor


def equivalent_ratio(*, p95_ms: float, floor_ms: float | None, target_ms: float) -> float:
    """p95 over target as the knee of :data:`KNEE` reads it: the latency above the floor
    over the room between floor and target, placed on a knee whose floor is at
    :data:`KNEE_FLOOR` of the target (so a slow service, with a floor near its target,
    is not taken for one near its capacity). Without a known floor under the target,
    or with one already under the knee's, p95 over target."""
    if floor_ms is None or floor_ms >= target_ms or floor_ms <= KNEE_FLOOR * target_ms:
        return p95_ms / target_ms
    excess = (p95_ms - floor_ms) / (target_ms - floor_ms)
    return KNEE_FLOOR + (1 - KNEE_FLOOR) * excess


def learn(learned: Learned, *, load: float, p95_ms: float, target_ms: float) -> Learned:
    """What one steady (per-replica load, p95) sample teaches; see the module doc.

    ``load`` is requests per second per ready replica. Returns ``learned`` unchanged
    when the sample carries no information (no load).
    """
    if load <= 0 or target_ms <= 0:
        return learned
    learned = _floor(learned, load=load, p95_ms=p95_ms, target_ms=target_ms)
    if p95_ms > target_ms:
        return _over(learned, load=load, p95_ms=p95_ms, target_ms=target_ms)
    learned = replace(learned, bottleneck=False, over=None)
    capacity = learned.capacity
    floor = floor_known(learned, load=load)
    ratio = equivalent_ratio(p95_ms=p95_ms, floor_ms=floor, target_ms=target_ms)
    last = learned.knee
    if ratio >= KNEE_LOW and last is not None and _unresponsive(last, load=load, p95_ms=p95_ms):
        # The latency barely follows the load: this is a floor (a slower release, a slow
        # service), not the knee. Known from here on; the capacity stands.
        floor = min(p95_ms, last[1])
        return replace(learned, floor_ms=floor, floor_load=FLOOR_LOAD * load, knee=(load, p95_ms))
    if ratio >= KNEE_LOW:
        if last is None or abs(math.log(load / last[0])) >= ELASTIC_STEP:
            learned = replace(learned, knee=(load, p95_ms))
        observed = load / knee_share(ratio)
        estimate = observed if capacity is None else capacity + KNEE_GAIN * (observed - capacity)
        estimate = _below(estimate, learned.upper)
        return replace(learned, capacity=estimate, confirmed=True, trusted=estimate)
    # Flat: the knee is further on.
    if capacity is None:
        return replace(learned, capacity=load / FIRST_SHARE)
    if load < PROBE_WHEN * capacity:
        return learned
    # Big steps only while p95 is still at a floor seen at a far lighter load.
    if floor is not None and p95_ms <= PROBE_BANDS[0] * floor:
        step = PROBE_FAR
    elif floor is not None and p95_ms <= PROBE_BANDS[1] * floor:
        step = PROBE_MID
    else:
        step = PROBE_NEAR
    return replace(learned, capacity=_below(capacity * step, learned.upper), confirmed=False)


def _unresponsive(last: tuple[float, float], *, load: float, p95_ms: float) -> bool:
    """Whether p95 barely followed the per-replica load since ``last`` (a load at least
    :data:`ELASTIC_STEP` apart in log, and an elasticity under :data:`ELASTIC_FLOOR`)."""
    step = math.log(load / last[0])
    if abs(step) < ELASTIC_STEP or p95_ms <= 0 or last[1] <= 0:
        return False
    return math.log(p95_ms / last[1]) / step < ELASTIC_FLOOR


def _floor(learned: Learned, *, load: float, p95_ms: float, target_ms: float) -> Learned:
    """The floor after a sample: a lower p95 replaces it (with its load). It never rises
    on its own: a floor that rose (a slower release) shows as latency that no longer
    follows the load (:func:`_unresponsive`)."""
    floor = learned.floor_ms
    if floor is None or p95_ms < floor:
        return replace(learned, floor_ms=p95_ms, floor_load=load)
    return learned


def _over(learned: Learned, *, load: float, p95_ms: float, target_ms: float) -> Learned:
    """A sample over the target: lower the capacity, unless the replicas are not the
    cause (see the module doc: more replicas did not help, at a load they took before)."""
    last = learned.over
    trusted = learned.trusted
    light = trusted is not None and load <= BOTTLENECK_SHARE * trusted
    no_better = last is not None and p95_ms >= BOTTLENECK_P95 * last[1]
    relieved = last is not None and load <= BOTTLENECK_LOAD * last[0]
    if light and no_better and (relieved or learned.bottleneck) and last is not None:
        # Keep the load of the first sample of the episode, to compare the next ones with.
        since = last if learned.bottleneck else (load, p95_ms)
        return replace(learned, capacity=trusted, over=(since[0], p95_ms), bottleneck=True)
    learned = replace(learned, bottleneck=False, over=(load, p95_ms))
    capacity = learned.capacity
    floor = floor_known(learned, load=load)
    ratio = equivalent_ratio(p95_ms=p95_ms, floor_ms=floor, target_ms=target_ms)
    observed = load / knee_share(ratio)
    upper = load if learned.upper is None else min(learned.upper, load)
    if capacity is None:
        return replace(learned, capacity=observed, upper=upper, confirmed=True)
    if load > capacity:
        # Over its capacity a replica is expected to miss the target: this says only
        # that the estimate was not too low.
        return replace(learned, upper=upper)
    lowered = max(min(capacity, observed), capacity / 2)
    return replace(learned, capacity=lowered, upper=upper, confirmed=True)


def _below(capacity: float, upper: float | None) -> float:
    return capacity if upper is None else min(capacity, upper)


def demand_up(
    *, rps: float, slope: float | None, recent: float | None, recent_slope: float | None
) -> float:
    """The request rate to size for when scaling up.

    The steady demand (:func:`steady_demand`), or more while the rate rises by more
    than noise (:data:`SLOPE_NOISE`): the rate a pod asked for now will meet once
    ready. Without the last interval's rate, the mean's slope projects the mean
    :data:`LEAD_SECONDS` ahead; with it, the last interval's own slope projects it
    :data:`RECENT_LEAD_SECONDS` ahead (the mean's slope also counts a jump the last
    interval has already shown, and would overshoot), never past the mean's projection.
    """
    steady = steady_demand(rps=rps, recent=recent)
    projected = rps + max(slope or 0.0, 0.0) * LEAD_SECONDS
    if projected - rps <= SLOPE_NOISE * rps or steady > rps:
        # No rise worth a lead, or a jump the last interval already shows in full.
        return steady
    if recent is None:
        return max(steady, projected)
    if recent_slope is None or recent_slope <= 0:
        return steady
    return max(steady, min(projected, recent + recent_slope * RECENT_LEAD_SECONDS))


def steady_demand(*, rps: float, recent: float | None) -> float:
    """The demand the scale-down window remembers: the mean rate, or the last interval's
    when it is a surge."""
    if recent is not None and recent > SURGE_RATIO * rps:
        return recent
    return rps


def drain_demand(*, rps: float, p95_ms: float, target_ms: float) -> float:
    """Extra requests per second to empty a queue built up in overload within
    :data:`DRAIN_SECONDS`: about ``rps * (p95 - target)`` requests wait beyond the
    target, so ``rps * (p95 - target) / DRAIN_SECONDS``; 0 under the target."""
    excess_s = max(p95_ms - target_ms, 0.0) / 1000
    return rps * excess_s / DRAIN_SECONDS


def per_replica(capacity: float) -> tuple[float, float]:
    """Requests per second one replica is planned to carry: scaling up, and down."""
    return capacity * UTILISATION, capacity * DOWN_UTILISATION


def first_estimate(*, prior: float | None) -> float | None:
    """The capacity before any sample: the prior, if one is set."""
    return prior if prior is not None and math.isfinite(prior) and prior > 0 else None
