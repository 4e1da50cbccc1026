"""The steps both components share: holding, disabled, missing data, and settling a sizing.

:func:`settle` turns what a model asks for (a :class:`Sizing`, in demand) into
replicas: up at once; down only to what the highest steady demand of the
stabilization window needs; then the scale-up rate limit and min/max. The other
functions word the Decisions of the ticks where no model decides. Pure, like the
policy that calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from retention_operator.autoscaling.config import ScalingConfig
from retention_operator.autoscaling.limits import clamp, hold_highest, limit_scale_up, replicas_for
from retention_operator.autoscaling.samples import Replicas
from retention_operator.autoscaling.state import (
    TRANSIENT_HOLD_SECONDS,
    Decision,
    Direction,
    Kind,
    PolicyState,
    direction_of,
    kind_of,
)


@dataclass(frozen=True, slots=True)
class Guards:
    """What both components share: the name in reasons and the shared scaling fields."""

    component: str
    config: ScalingConfig


def unchanged(guards: Guards, replicas: Replicas, state: PolicyState, *, paused: bool) -> Decision:
    """Paused: keep the current replicas untouched. Disabled: only bring them within
    the bounds."""
    current, config = replicas.desired, guards.config
    if paused:
        reason = f"Kept {guards.component} at {_count(current, 'replica')}: autoscaling is paused."
        return _plain(current, reason, "none", state, kind="Paused")
    desired = clamp(current, low=config.min_replicas, high=config.max_replicas)
    direction = direction_of(current=current, desired=desired)
    if direction == "none":
        reason = (
            f"Kept {guards.component} at {_count(current, 'replica')}: autoscaling is disabled."
        )
    else:
        reason = (
            f"Scaled to {_count(desired, 'replica')} from {current}: autoscaling is disabled, "
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


def missing(
    guards: Guards, *, replicas: Replicas, state: PolicyState, what: str, signal: bool = True
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
        why = (
            f"no {what} for {_count(failed, 'tick')}, "
            f"so the fallback of {_count(fallback, 'replica')} applies"
        )
        kind = "Fallback"
    else:
        desired = held
        why = f"no {what} for {_count(failed, 'tick')}, and missing data never scales down"
    return word(
        guards,
        replicas=replicas,
        desired=desired,
        recommendation=None,
        state=state,
        why=why,
        kind=kind,
        missing=what if signal else None,
    )


@dataclass(frozen=True, slots=True)
class Sizing:
    """What a model asks for, in demand (requests or jobs per second): ``up`` to carry
    now, ``steady`` for the scale-down window to remember (without transients such as a
    queue to drain), and what one replica carries scaling up (``per_up``) and down
    (``per_down``, less, for hysteresis). ``slack``: a shortfall under this share of a
    replica is left uncovered. ``at_least``: a floor on the count. ``adjust``: a last say
    on the count, given the current replicas (scale-to-zero)."""

    up: float
    steady: float
    per_up: float
    per_down: float
    slack: float = 0.0
    at_least: int = 0
    adjust: Callable[[int, int], int] | None = None

    def count(self, value: int, *, current: int) -> int:
        value = max(value, self.at_least)
        return value if self.adjust is None else self.adjust(value, current)


def settle(
    guards: Guards,
    *,
    now: float,
    replicas: Replicas,
    sizing: Sizing,
    state: PolicyState,
    why: str,
) -> Decision:
    """Turn a sizing into replicas: up at once; down only to what the highest steady
    demand of the stabilization window needs, and never below what the upward demand
    of the last :data:`TRANSIENT_HOLD_SECONDS` (at most the window) asked for; then the
    scale-up limit and bounds."""
    config = guards.config
    low, high = config.min_replicas, config.max_replicas
    window = config.scale_down_stabilization_seconds
    current = replicas.desired
    # A fresh state (first tick, or an operator restart) counts the current replicas
    # as asked for now, so that a restart never scales down before a full window.
    memory = state.recommendations or ((now, current * sizing.per_down),)
    held, memory = hold_highest(now=now, value=sizing.steady, window=window, memory=memory)
    # Never longer than the window the spec asks for: a short window is a choice.
    hold = min(TRANSIENT_HOLD_SECONDS, window)
    recent, transients = hold_highest(
        now=now, value=sizing.up, window=hold, memory=state.transients
    )
    up = replicas_for(sizing.up, sizing.per_up, slack=sizing.slack)
    if up > current:
        recommendation = stabilized = up
    else:
        needed = max(
            replicas_for(held, sizing.per_down),
            replicas_for(recent, sizing.per_up, slack=sizing.slack),
        )
        stabilized = min(current, needed)
        recommendation = min(current, replicas_for(sizing.steady, sizing.per_down))
    recommendation = sizing.count(recommendation, current=current)
    stabilized = sizing.count(stabilized, current=current)
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
    state = replace(
        state,
        failed_ticks=0,
        recommendations=memory,
        transients=transients,
        scale_ups=scale_ups,
    )
    return word(
        guards,
        replicas=replicas,
        desired=desired,
        recommendation=recommendation,
        state=state,
        why=f"{why}, so {recommendation} recommended{suffix}",
    )


def word(
    guards: Guards,
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
        head = f"Kept {guards.component} at {_count(current, 'replica')}"
    else:
        head = (
            f"Scaled {guards.component} {direction} from {current} to {_count(desired, 'replica')}"
        )
    return Decision(
        desired=desired,
        reason=f"{head}: {why}.",
        direction=direction,
        recommendation=recommendation,
        state=state,
        kind=kind or kind_of(direction),
        missing=missing,
    )


def _count(n: int, noun: str) -> str:
    """``1 replica``, ``3 replicas``: a count and its noun, as a reason reads it."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
