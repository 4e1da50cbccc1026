"""Worker sizing on drain time, and the per-worker throughput it learns.

Workers needed = (arrival rate + backlog / drain time) / per-worker throughput:
enough to keep up with what arrives and to empty what is queued within the
drain time. The drain time is ``target_drain_seconds``, or less once the oldest
waiting job has used up part of ``target_queue_wait_seconds`` (:func:`drain_seconds`):
the measured wait corrects a backlog that a wrong throughput estimate sizes too
small. Only the arrival rate is remembered by the scale-down window: a drained
backlog needs no more workers.

The throughput starts at the configured prior and is measured while every ready
worker is busy (the backlog never ran dry), since only then does the completion
rate show what a worker can do (:func:`learn_throughput`). While the workers are
not busy the completion rate per worker is only a lower bound; when the fleet runs
near the estimate without ever being busy and no measurement confirmed it lately,
the estimate is probed upwards (:data:`PROBE_STEP`): the fleet shrinks, and either
keeps up (the estimate was low) or gets busy (and is measured).
"""

from __future__ import annotations

import math

# A deficit under this fraction of a worker is left to the backlog term, which
# asks for the worker once the backlog it causes is worth draining.
UP_SLACK = 0.1
# Scale down only to a count that would run at most this busy.
DOWN_UTILISATION = 1.0
# Weight of a new throughput measurement in the running estimate.
THROUGHPUT_WEIGHT = 0.5
# Shortest drain time asked for when the oldest job is already late: the backlog is
# then sized to go within a few ticks, not within one (which would ask for a burst).
MIN_DRAIN_SECONDS = 10.0
# Probe while the workers run at least this share of the estimate, never busy, and no
# measurement ever confirmed the estimate.
PROBE_WHEN = 0.7
# How much a probe raises the estimate.
PROBE_STEP = 1.25


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


# In a surge expected to end soon, the queue may absorb it: the workers are sized so
# that the backlog left when it ends waits at most this share of the wait target.
SURGE_WAIT_SHARE = 0.5


def surge_workers(
    *, arrival_rate: float, backlog: float, throughput: float, remaining_s: float, budget_s: float
) -> int:
    """The fewest workers (at least one) with which a surge expected to last ``remaining_s``
    more leaves a backlog that waits at most ``budget_s`` when it ends."""
    workers = 1
    while workers < 10_000:
        rate = workers * throughput
        left = backlog + max(arrival_rate - rate, 0.0) * remaining_s
        if left / rate <= budget_s:
            return workers
        workers += 1
    return workers


# What a surge of jobs meets before a worker asked for it is ready: a tick and a pod's
# start-up.
SURGE_STARTUP_SECONDS = 35.0


def queue_absorbs(
    *,
    peak: float,
    base: float | None,
    throughput: float,
    min_replicas: int,
    target_wait: float,
) -> bool:
    """Whether the queue can take a surge of ``peak`` jobs/s while workers start: the
    fleet sized for the ``base`` arrivals falls behind by ``peak`` less its rate for
    :data:`SURGE_STARTUP_SECONDS`, and that backlog must wait at most ``target_wait``
    at the fleet's rate. True before any surge or base is known."""
    if peak <= 0 or base is None or base <= 0 or throughput <= 0:
        return True
    fleet = max(math.ceil(base / (throughput * DOWN_UTILISATION)), min_replicas, 1)
    rate = fleet * throughput
    backlog = max(peak - rate, 0.0) * SURGE_STARTUP_SECONDS
    return backlog / rate <= target_wait


def demand(*, arrival_rate: float, backlog: float, drain_seconds: float) -> float:
    """Jobs per second to work: what arrives, plus the backlog over ``drain_seconds``."""
    return max(arrival_rate, 0.0) + max(backlog, 0.0) / max(drain_seconds, 1.0)


def learn_throughput(
    *,
    estimate: float,
    completed_rate: float | None,
    ready: int,
    busy: bool,
    may_probe: bool,
) -> tuple[float, bool]:
    """The per-worker throughput after one observation, and whether it was measured.

    While all ready workers were busy the completion rate per worker is a measurement
    and moves the estimate; otherwise it is a lower bound and raises the estimate if
    higher, and with ``may_probe`` (the fleet ran near the estimate without being busy)
    the estimate is probed up by :data:`PROBE_STEP`. Unchanged without a completion rate
    or workers.
    """
    if completed_rate is None or ready <= 0:
        return estimate, False
    measured = completed_rate / ready
    if busy:
        blended = (1 - THROUGHPUT_WEIGHT) * estimate + THROUGHPUT_WEIGHT * max(measured, 1e-6)
        return blended, True
    if may_probe:
        return max(estimate * PROBE_STEP, measured), False
    return max(estimate, measured), False
