"""Worker sizing on drain time, and the per-worker throughput it learns.

Workers needed = (arrival rate + backlog / drain time) / per-worker throughput:
enough to keep up with what arrives and to empty what is queued within the
drain time. The drain time is ``target_drain_seconds``, or less once the oldest
waiting job has used up part of ``target_queue_wait_seconds`` (:func:`drain_seconds`):
the measured wait corrects a backlog that a wrong throughput estimate sizes too
small. The throughput starts at the configured prior and is measured while every
ready worker is busy (the backlog never ran dry), since only then does the
completion rate show what a worker can do.
"""

from __future__ import annotations

import math

# A deficit under this fraction of a worker is left to the backlog term, which
# asks for the worker once the backlog it causes is worth draining.
UP_SLACK = 0.1
# Scale down only to a count that would run at most this busy.
DOWN_UTILISATION = 0.9
# Weight of a new throughput measurement in the running estimate.
THROUGHPUT_WEIGHT = 0.5
# Shortest drain time asked for when the oldest job is already late: the backlog is
# then sized to go within a few ticks, not within one (which would ask for a burst).
MIN_DRAIN_SECONDS = 10.0


def drain_seconds(*, target_drain: float, target_wait: float, waited: float | None) -> float:
    """Seconds in which the current backlog should be taken: ``target_drain``, or what
    is left of ``target_wait`` after the oldest waiting job's ``waited`` seconds when
    that is less (never under :data:`MIN_DRAIN_SECONDS`). Unknown ``waited``: the target.

    Taking every queued job within what is left keeps the oldest within the wait
    target, and every younger one too.
    """
    if waited is None:
        return target_drain
    return max(min(target_drain, target_wait - waited), MIN_DRAIN_SECONDS)


def workers_needed(
    *, arrival_rate: float, backlog: float, throughput: float, drain_seconds: float
) -> float:
    """Fractional workers that keep up with ``arrival_rate`` and drain ``backlog`` in
    ``drain_seconds``, each doing ``throughput`` jobs per second (> 0)."""
    demand = max(arrival_rate, 0.0) + max(backlog, 0.0) / max(drain_seconds, 1.0)
    return demand / throughput


def recommend(*, needed: float, current: int) -> int:
    """Whole workers for ``needed``, with hysteresis: up as soon as the deficit is more
    than :data:`UP_SLACK` of a worker, down only to a count that runs at most
    :data:`DOWN_UTILISATION` busy; otherwise ``current``."""
    up = math.ceil(needed - UP_SLACK)
    if up > current:
        return up
    down = math.ceil(needed / DOWN_UTILISATION)
    return down if down < current else current


def learn_throughput(
    *, estimate: float, completed_rate: float | None, ready: int, busy: bool
) -> float:
    """The per-worker throughput after one observation.

    While all ready workers were busy the completion rate per worker is a
    measurement and moves the estimate; otherwise it is only a lower bound and
    raises the estimate if higher. Unchanged without a completion rate or workers.
    """
    if completed_rate is None or ready <= 0:
        return estimate
    measured = completed_rate / ready
    if busy:
        return (1 - THROUGHPUT_WEIGHT) * estimate + THROUGHPUT_WEIGHT * max(measured, 1e-6)
    return max(estimate, measured)
