"""What the policy returns and what it carries from one tick to the next.

The policy keeps no globals: every tick it receives the :class:`PolicyState` it
returned last time (or None on the first tick) and returns a new one inside the
:class:`Decision`. The loop stores it per stack and component; losing it (an
operator restart) is safe, the policy starts again from its priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "none"]
Kind = Literal["ScaleUp", "ScaleDown", "Hold", "Fallback", "Disabled", "Paused"]
"""What kind of decision a tick made; ``status.autoscaling.<component>.lastDecision``."""


@dataclass(frozen=True, slots=True)
class PolicyState:
    """State carried between ticks for one component of one stack.

    ``recommendations``: (at, replicas) of the recent recommendations, for the
    scale-down stabilization window. ``scale_ups``: (at, replicas added) of recent
    scale-ups, for the scale-up rate limit. ``failed_ticks``: ticks in a row without
    usable data. ``capacity``: what one replica handles at target, learned (API:
    requests per second; workers: jobs per second), None until known.
    ``ready``/``ready_since``: the ready count and since when it holds, to learn only
    from signals that saw a steady fleet. ``learned_at``: time of the last sample
    learned from.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_ups: tuple[tuple[float, int], ...] = ()
    failed_ticks: int = 0
    capacity: float | None = None
    ready: int = -1
    ready_since: float = 0.0
    learned_at: float | None = None


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
