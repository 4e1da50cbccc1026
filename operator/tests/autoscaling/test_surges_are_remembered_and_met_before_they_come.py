"""Short surges of demand are remembered: after the first its peak is held as long as an
HPA's window would; once two are seen, capacity for the next comes before it does."""

from __future__ import annotations

from retention_operator.autoscaling import surges


def _feed(seen: surges.Surges, levels: list[tuple[float, float]]) -> surges.Surges:
    for at, demand in levels:
        seen = surges.observe(seen, now=at, demand=demand)
    return seen


def _surge(start: float, *, base: float = 300.0, peak: float = 1200.0) -> list[tuple[float, float]]:
    """90 s at the peak, in 5 s ticks, then back at the base."""
    return [(start + t, peak) for t in range(0, 90, 5)] + [(start + 90, base)]


def test_a_surge_is_seen_to_its_end_and_its_peak_held() -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0))
    assert len(seen.seen) == 1 and seen.active is None
    start, peak, end = seen.seen[0]
    assert (start, peak, end) == (600.0, 1200.0, 690.0)
    assert surges.to_hold(seen, now=700.0) == 1200.0
    assert surges.to_hold(seen, now=690.0 + surges.HOLD_AFTER_SECONDS + 5) == 0.0


def test_with_a_period_known_capacity_comes_a_lead_before_the_next() -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    gap = [(float(t), 300.0) for t in range(695, 1200, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0) + gap + _surge(1200.0))
    assert len(seen.seen) == 2
    # Between surges nothing is held (the fleet may scale down and be back in time)...
    assert surges.to_hold(seen, now=1500.0) == 0.0
    # ...until a lead before the earliest the next may come: 1200 + 600 - 60.
    assert surges.to_hold(seen, now=1800.0 - surges.LEAD_SECONDS) == 1200.0
    # Given up once the longest interval has passed twice.
    assert surges.to_hold(seen, now=1200.0 + 2 * 600.0 + 5) == 0.0


def test_a_long_excursion_is_a_new_level_not_a_surge() -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    high = [(float(t), 1500.0) for t in range(600, 1200, 5)]
    seen = _feed(surges.Surges(), base + high)
    assert seen.seen == () and seen.active is None
    assert seen.base is not None and seen.base > 1000.0


def test_a_surge_under_way_tells_how_long_it_may_last() -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    gap = [(float(t), 300.0) for t in range(695, 1200, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0) + gap + [(1200.0, 1200.0)])
    assert seen.active is not None
    assert surges.remaining(seen, now=1230.0) == 60.0
