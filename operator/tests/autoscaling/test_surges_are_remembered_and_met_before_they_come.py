"""Short surges of demand are remembered: after the first its peak is held for the
stack's scale-down window; once two are seen, capacity for the next comes before it
does, whatever that window."""

from __future__ import annotations

import pytest

from retention_operator.autoscaling import surges


def _feed(seen: surges.Surges, levels: list[tuple[float, float]]) -> surges.Surges:
    for at, demand in levels:
        seen = surges.observe(seen, now=at, demand=demand)
    return seen


def _surge(start: float, *, base: float = 300.0, peak: float = 1200.0) -> list[tuple[float, float]]:
    """90 s at the peak, in 5 s ticks, then back at the base."""
    return [(start + t, peak) for t in range(0, 90, 5)] + [(start + 90, base)]


def test_a_surge_is_seen_to_its_end() -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0))
    assert len(seen.seen) == 1 and seen.active is None
    start, peak, end = seen.seen[0]
    assert (start, peak, end) == (600.0, 1200.0, 690.0)


# 8 s: the e2e workers stack's; 120 and 180: the workers' and the API's defaults; 600:
# longer than an HPA's default 300 s, which the hold follows too.
@pytest.mark.parametrize("window", [8.0, 120.0, 180.0, 600.0])
def test_the_first_surges_peak_is_held_for_the_stacks_window_after_it_ends(
    window: float,
) -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0))
    assert surges.to_hold(seen, now=690.0, window=window) == 1200.0
    assert surges.to_hold(seen, now=690.0 + window, window=window) == 1200.0
    assert surges.to_hold(seen, now=690.0 + window + 1, window=window) == 0.0


@pytest.mark.parametrize("window", [8.0, 600.0])
def test_with_a_period_known_capacity_comes_a_lead_before_the_next(window: float) -> None:
    base = [(float(t), 300.0) for t in range(0, 600, 5)]
    gap = [(float(t), 300.0) for t in range(695, 1200, 5)]
    seen = _feed(surges.Surges(), base + _surge(600.0) + gap + _surge(1200.0))
    assert len(seen.seen) == 2
    # Between surges nothing is held (the fleet may scale down and be back in time)...
    assert surges.to_hold(seen, now=1500.0, window=window) == 0.0
    # ...until a lead before the earliest the next may come: 1200 + 600 - 60.
    assert surges.to_hold(seen, now=1800.0 - surges.LEAD_SECONDS, window=window) == 1200.0
    # Given up once the longest interval has passed twice.
    assert surges.to_hold(seen, now=1200.0 + 2 * 600.0 + 5, window=window) == 0.0


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
