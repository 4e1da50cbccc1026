"""Learning a history in one pass (``forecast.learn``) gives what observing its points
one at a time gives: the same days, day under way, minute under way and newest sample,
whatever the points (gaps, several a minute, missing, negative, out of order, more days
than are kept); the same errors over the last day; and, once the last day was judged,
the same moving error and trust."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.forecast import DAY_SECONDS, Forecast

Points = list[tuple[float, float | None]]


def _observed(model: Forecast, points: Points) -> Forecast:
    for at, value in points:
        model = forecast.observe(model, at=at, value=value)
    return model


def _today(model: Forecast) -> tuple[int, bytes] | None:
    """The day under way, its NaNs (not seen) compared as bytes (NaN is unequal to NaN)."""
    return None if model.today is None else (model.today[0], model.today[1].tobytes())


def _same_learning(fast: Forecast, slow: Forecast) -> None:
    assert fast.days == slow.days
    assert _today(fast) == _today(slow)
    assert fast.open == slow.open
    assert fast.last_at == slow.last_at
    assert fast.hours == slow.hours
    assert fast.last_error == slow.last_error
    assert fast.compared <= slow.compared
    assert forecast.error_last_day(fast) == forecast.error_last_day(slow)


values = st.one_of(
    st.none(),
    st.just(math.nan),
    st.just(-1.0),
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    st.integers(min_value=0, max_value=5000).map(float),
)
# Up to 40 days (more than the 28 kept), with gaps from seconds to days.
gaps = st.one_of(
    st.floats(min_value=0.0, max_value=90.0), st.floats(min_value=0.0, max_value=3 * DAY_SECONDS)
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(gaps, values), min_size=1, max_size=120), st.booleans())
def test_any_history_gives_the_same_days_and_last_day(
    steps: list[tuple[float, float | None]], shuffled: bool
) -> None:
    at, points = 1_000_000.0, []
    for gap, value in steps:
        at += gap
        points.append((at, value))
    if shuffled:
        # Out of order: observe drops a sample not newer than the last; so must learn.
        points = points[::2] + points[1::2]
    _same_learning(forecast.learn(Forecast(), points), _observed(Forecast(), points))


def test_a_forecast_under_way_learns_more_history_the_same_way() -> None:
    rng = random.Random(5)
    points: Points = [(minute * 60.0 + 15.0, rng.uniform(10, 20)) for minute in range(4 * 1440)]
    start = _observed(Forecast(), [*points[:100], (100 * 60.0 + 1.0, 3.0)])
    more = [(at, value) for at, value in points if at > 100 * 60.0 + 1.0]
    _same_learning(forecast.learn(start, more), _observed(start, more))


def test_a_dense_history_gives_the_same_error_and_trust() -> None:
    rng = random.Random(11)
    points: Points = []
    for minute in range(9 * 1440):
        base = 1200.0 if 480 <= minute % 1440 < 1200 else 300.0
        points.append((minute * 60.0 + 30.0, base * rng.gauss(1.0, 0.03)))
    fast, slow = forecast.learn(Forecast(), points), _observed(Forecast(), points)
    _same_learning(fast, slow)
    assert fast.error is not None and slow.error is not None
    assert math.isclose(fast.error, slow.error, rel_tol=1e-12)
    assert forecast.trust(fast) == forecast.trust(slow)
    at = points[-1][0] + 45.0
    assert forecast.ready_for(fast, now=at, current=300.0, lead=120.0) == forecast.ready_for(
        slow, now=at, current=300.0, lead=120.0
    )
