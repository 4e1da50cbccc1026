"""The guards every recommendation passes through: stabilization, rate limit, bounds.

Pure functions over explicit state (tuples of (at, value)); the policy composes
them in this order: scale-down stabilization, scale-up rate limit, min/max.
"""

from __future__ import annotations

import math

from retention_operator.autoscaling.config import ScaleUpLimit


def stabilize_down(
    *,
    now: float,
    recommendation: int,
    current: int,
    window: float,
    recommendations: tuple[tuple[float, int], ...],
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """Scale down only to the highest recommendation of the last ``window`` seconds.

    Returns the stabilized value (never below ``recommendation``, and equal to it
    when it is a scale-up) and the recommendations to keep, this one included.
    """
    kept = tuple((at, r) for at, r in recommendations if at > now - window)
    kept = (*kept, (now, recommendation))
    if recommendation >= current:
        return recommendation, kept
    highest = max(r for _, r in kept)
    return min(current, max(recommendation, highest)), kept


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
