"""A completed day of the forecast is kept as 16-bit counts of a power-of-two step: a
quarter of the doubles it replaces, each minute within the day's peak / 65,534 of its
mean, a whole number of requests per second kept exactly, a minute not seen kept as
not seen."""

from __future__ import annotations

import math
import random
import sys

from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.forecast import DAY_MINUTES, MAX_COUNT, Forecast


def _one_day(values: list[float]) -> forecast.Day:
    """The day 0 of ``values`` (a minute each), completed by a sample of day 1."""
    model = Forecast()
    for minute, value in enumerate(values):
        model = forecast.observe(model, at=minute * 60.0 + 30.0, value=value)
    model = forecast.observe(model, at=forecast.DAY_SECONDS + 30.0, value=1.0)
    model = forecast.observe(model, at=forecast.DAY_SECONDS + 90.0, value=1.0)
    (day,) = model.days
    return day


def _decoded(day: forecast.Day, position: int) -> float:
    count = day.counts[position]
    return math.nan if count == forecast.NOT_SEEN else count * day.step


def test_each_minute_is_within_the_peak_over_max_count_of_its_mean() -> None:
    rng = random.Random(2)
    values = [rng.uniform(0.0, 12_345.678) for _ in range(DAY_MINUTES)]
    day = _one_day(values)
    peak = max(values)
    for position, value in enumerate(values):
        assert abs(_decoded(day, position) - value) <= peak / MAX_COUNT
    assert day.counts.itemsize == 2 and len(day.counts) == DAY_MINUTES
    assert math.frexp(day.step)[0] == 0.5  # a power of two


def test_whole_numbers_are_exact_and_a_minute_not_seen_stays_unseen() -> None:
    values = [float(minute % 3000) for minute in range(DAY_MINUTES)]
    model = Forecast()
    for minute, value in enumerate(values):
        if minute != 700:  # no sample in minute 700
            model = forecast.observe(model, at=minute * 60.0 + 30.0, value=value)
    model = forecast.observe(model, at=forecast.DAY_SECONDS + 30.0, value=1.0)
    model = forecast.observe(model, at=forecast.DAY_SECONDS + 90.0, value=1.0)
    (day,) = model.days
    assert [_decoded(day, p) for p in range(DAY_MINUTES) if p != 700] == [
        v for p, v in enumerate(values) if p != 700
    ]
    assert math.isnan(_decoded(day, 700))


def test_a_day_of_zeros_is_zeros() -> None:
    day = _one_day([0.0] * DAY_MINUTES)
    assert all(_decoded(day, p) == 0.0 for p in range(DAY_MINUTES))


def test_four_weeks_hold_under_a_hundred_kilobytes() -> None:
    points = [
        (minute * 60.0 + 30.0, 100.0 + minute % 1440)
        for minute in range((forecast.KEPT_DAYS + 1) * DAY_MINUTES)
    ]
    model = forecast.learn(Forecast(), points)
    assert forecast.days_known(model) == forecast.KEPT_DAYS
    held = sum(sys.getsizeof(day.counts) + sys.getsizeof(day) for day in model.days)
    assert model.today is not None
    held += sys.getsizeof(model.today[1])
    assert held < 100_000, held
