"""Surges: short excursions of demand above its base, remembered to meet the next one.

A surge starts when the steady demand passes :data:`START` times the base demand (a
slow mean of the demand outside surges) and ends when it falls under :data:`END`
times it; one longer than :data:`LONGEST_SECONDS` is a new level, not a surge, and
becomes the base. Each surge is kept as (start, peak, end).

What the memory asks for, :func:`to_hold`: the demand of the surges to come, which
scale-down must not give up and a pre-scale brings in before they arrive:

* after the first surge, its peak for ``window`` seconds from its end: the stack's
  ``scaleDownStabilizationSeconds``. When the next comes is unknown, and the window is
  the span the stack's own spec gives for keeping capacity once demand has fallen (an
  HPA's window is that span for the HPA); a fixed span of its own would override a
  short window the spec chose;
* once two surges are seen, the highest recent peak from :data:`LEAD_SECONDS` before
  the earliest the next one may come (the last start plus the shortest interval seen)
  until it has come; nothing in between (the fleet may scale down and be back in
  time); given up once the longest interval has passed twice.

Pure functions over a frozen :class:`Surges`; the API's policy calls :func:`observe`
every tick with its steady demand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

# Demand over this multiple of the base starts a surge; under END it has ended.
START = 1.5
END = 1.25
# A surge longer than this is a new level of demand.
LONGEST_SECONDS = 300.0
# Time constant of the base demand (outside surges).
BASE_SECONDS = 600.0
# A pre-scale starts this long before the next surge may come: a pod's start-up and
# a scrape.
LEAD_SECONDS = 60.0
# Surges remembered.
KEPT = 6

Surge = tuple[float, float, float]
"""(start, peak demand, end)."""


@dataclass(frozen=True, slots=True)
class Surges:
    """The surges seen, oldest first; the one under way as (start, peak so far); the base
    demand and when it was last updated."""

    seen: tuple[Surge, ...] = ()
    active: tuple[float, float] | None = None
    base: float | None = None
    base_at: float = 0.0


def observe(surges: Surges, *, now: float, demand: float) -> Surges:
    """Note this tick's steady demand: follow the base, start, extend or end a surge."""
    if surges.base is None and demand <= 0:
        return surges  # Nothing to follow yet (a stack at rest): the same value, no copy.
    if surges.base is None or surges.base <= 0:
        return replace(surges, base=demand if demand > 0 else None, base_at=now)
    base = surges.base
    if surges.active is not None:
        start, peak = surges.active
        if now - start > LONGEST_SECONDS:
            # Not a surge: a new level. It becomes the base at once.
            return Surges(seen=surges.seen, active=None, base=demand, base_at=now)
        if demand >= END * base:
            return replace(surges, active=(start, max(peak, demand)))
        seen = (*surges.seen, (start, peak, now))[-KEPT:]
        return Surges(seen=seen, active=None, base=base, base_at=now)
    if demand >= START * base:
        return replace(surges, active=(now, demand))
    # Outside surges the base follows the demand with a slow mean.
    weight = min(max(now - surges.base_at, 0.0) / BASE_SECONDS, 1.0)
    return replace(surges, base=base + weight * (demand - base), base_at=now)


def to_hold(surges: Surges, *, now: float, window: float) -> float:
    """The demand to keep capacity for now, for surges to come; 0 for none. ``window``:
    the component's scale-down stabilization, in seconds (how long a single surge's peak
    is held after it ends)."""
    if surges.active is not None or not surges.seen:
        return 0.0
    last_start, _, last_end = surges.seen[-1]
    peak = typical_peak(surges)
    starts = [start for start, _, _ in surges.seen]
    intervals = [b - a for a, b in pairwise(starts)]
    if not intervals:
        # One surge: when the next comes is unknown; hold it as long as the spec holds
        # any demand that has fallen.
        return peak if now - last_end <= window else 0.0
    if now - last_start > 2 * max(intervals):
        return 0.0
    earliest = last_start + min(intervals)
    return peak if now >= earliest - LEAD_SECONDS else 0.0


def typical_peak(surges: Surges) -> float:
    """The peak demand of a surge like the last ones seen (the median of the last three);
    0 before any."""
    recent = sorted(p for _, p, _ in surges.seen[-3:])
    return recent[(len(recent) - 1) // 2] if recent else 0.0


def longest(surges: Surges) -> float:
    """Seconds the longest surge seen lasted; 0 before any ended."""
    return max((end - start for start, _, end in surges.seen), default=0.0)


def remaining(surges: Surges, *, now: float) -> float | None:
    """Seconds the surge under way is expected to last still (by the longest seen), None
    when no surge is under way or none was seen to its end, or it outlasts them all."""
    if surges.active is None or not surges.seen:
        return None
    left = surges.active[0] + longest(surges) - now
    return left if left > 0 else None


def just_ended(before: Surges, after: Surges) -> bool:
    """Whether the surge under way before this tick has ended with it."""
    return (
        before.active is not None
        and after.active is None
        and len(after.seen) > 0
        and (not before.seen or after.seen[-1] != before.seen[-1])
    )
