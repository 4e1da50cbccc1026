"""What the policy returns and what it carries from one tick to the next.

The policy keeps no globals: every tick it receives the :class:`PolicyState` it
returned last time (or None on the first tick) and returns a new one inside the
:class:`Decision`. The loop stores it per stack and component; losing it (an
operator restart) is safe, the policy starts again from its priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from retention_operator.autoscaling.api import Learned
from retention_operator.autoscaling.forecast import Forecast
from retention_operator.autoscaling.surges import Surges

Direction = Literal["up", "down", "none"]
# How long replicas added for a transient demand are kept at least: a pod's start-up
# and a fresh sample that shows whether they helped.
TRANSIENT_HOLD_SECONDS = 45.0
Kind = Literal["ScaleUp", "ScaleDown", "Hold", "Fallback", "Disabled", "Paused"]
"""What kind of decision a tick made; ``status.autoscaling.<component>.lastDecision``."""


@dataclass(frozen=True, slots=True)
class PolicyState:
    """State carried between ticks for one component of one stack.

    ``recommendations``: (at, demand) of the recent steady demand (API: requests per
    second; workers: jobs per second), for the scale-down stabilization window: the
    window remembers demand, not replicas, so that a better capacity estimate re-sizes
    at once. ``transients``: (at, demand) of the recent upward demand, transients
    included (a queue to drain, a lead on a rise), held for
    :data:`TRANSIENT_HOLD_SECONDS` so that replicas added for them are not removed
    before they could help. ``scale_ups``: (at, replicas added) of recent scale-ups,
    for the scale-up rate limit. ``failed_ticks``: ticks in a row without usable data.
    ``capacity``: what one replica handles at target, learned (API: requests per second at the p95
    target; workers: jobs per second), None until known. ``ready``/``ready_since``: the
    ready count and since when it holds, to learn only from signals that saw a steady
    fleet. ``learned_at``: time of the last sample learned from. ``learned``: what
    the API's latency has taught beyond the capacity (see :class:`.api.Learned`).
    ``confirmed_at``: when a measurement (not a probe) last set the capacity.
    ``surges``: the surges of demand seen so far (API requests, worker arrivals; see
    :mod:`.surges`). ``forecast``: the demand's learned shape and how good it has been
    (:mod:`.forecast`), None while the forecast is off.
    """

    recommendations: tuple[tuple[float, float], ...] = ()
    transients: tuple[tuple[float, float], ...] = ()
    scale_ups: tuple[tuple[float, int], ...] = ()
    failed_ticks: int = 0
    capacity: float | None = None
    ready: int = -1
    ready_since: float = 0.0
    learned_at: float | None = None
    learned: Learned | None = None
    confirmed_at: float | None = None
    surges: Surges | None = None
    forecast: Forecast | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one tick for one component.

    ``desired``: the replicas to set (equal to the current desired replicas when
    nothing changes). ``reason``: one sentence, fit for a Kubernetes Event message.
    ``direction``: ``up``, ``down`` or ``none`` relative to the current desired
    replicas. ``recommendation``: what the model asked for before rate limits,
    stabilization and bounds (None when it could not say, as on missing data).
    ``state``: to pass to the next tick. ``kind``: the decision's one word (a fallback,
    a hold, a scale, disabled or paused), as ``lastDecision`` reports it.
    ``missing``: the signal that was missing or stale this tick (for the
    MetricsUnavailable warning), None when the signals were there.
    """

    desired: int
    reason: str
    direction: Direction
    recommendation: int | None
    state: PolicyState
    kind: Kind
    missing: str | None = None


def kind_of(direction: Direction) -> Kind:
    """The kind of a decision the model made: a scale up, a scale down or a hold."""
    if direction == "up":
        return "ScaleUp"
    if direction == "down":
        return "ScaleDown"
    return "Hold"


def direction_of(*, current: int, desired: int) -> Direction:
    """``up``, ``down`` or ``none`` for a change from ``current`` to ``desired``."""
    if desired > current:
        return "up"
    if desired < current:
        return "down"
    return "none"
