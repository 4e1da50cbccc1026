"""The guards every recommendation passes through: stabilization, rate limit, bounds.

Pure functions over explicit state (tuples of (at, value)); the policy composes
them in this order: scale-down stabilization (over demand), scale-up rate limit,
min/max.
"""

from __future__ import annotations

import math
from operator import itemgetter

from retention_operator.autoscaling.config import ScaleUpLimit


def hold_highest(
    *,
    now: float,
    value: float,
    window: float,
    memory: tuple[tuple[float, float], ...],
) -> tuple[float, tuple[tuple[float, float], ...]]:
    """The highest value of the last ``window`` seconds, this one included, and the
    values to keep. The scale-down stabilization holds the highest steady demand.

    ``memory`` is oldest first, as this function returns it (``now`` only grows), so
    what has left the window is a prefix of it.
    """
    horizon = now - window
    start = 0
    while start < len(memory) and memory[start][0] <= horizon:
        start += 1
    kept = (*memory[start:], (now, value))
    return max(map(itemgetter(1), kept)), kept


def replicas_for(demand: float, per_replica: float, *, slack: float = 0.0) -> int:
    """Whole replicas that carry ``demand`` at ``per_replica`` each (> 0); a shortfall of
    under ``slack`` of a replica is left uncovered. 0 for no demand."""
    if demand <= 0:
        return 0
    return max(math.ceil(demand / per_replica - slack), 0)


def limit_scale_up(
    *,
    now: float,
    desired: int,
    current: int,
    limit: ScaleUpLimit,
    scale_ups: tuple[tuple[float, int], ...],
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """Cap a scale-up to the larger of ``limit.percent`` and ``limit.pods`` over the
    replicas at the start of the current period (as the HPA's ``selectPolicy: Max``).

    Returns the capped value and the scale-up events to keep, this one included if
    it adds replicas. A scale-down or no change passes through unchanged.
    """
    kept = tuple((at, added) for at, added in scale_ups if at > now - limit.period_seconds)
    if desired <= current:
        return desired, kept
    start = current - sum(added for _, added in kept)
    start = max(start, 0)
    ceiling = max(math.ceil(start * (1 + limit.percent / 100)), start + limit.pods)
    capped = max(current, min(desired, ceiling))
    if capped > current:
        kept = (*kept, (now, capped - current))
    return capped, kept


def clamp(value: int, *, low: int, high: int) -> int:
    """``value`` within [low, high]; ``low`` wins if the bounds cross."""
    return max(low, min(value, high))
