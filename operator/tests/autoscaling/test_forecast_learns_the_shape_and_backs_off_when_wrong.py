"""The forecast learns the daily and weekly shape of a demand by the minute, averages days
robustly, weighting recent ones, never asks for less than the demand, and stops being
followed from the minute it has been wrong (a day that deviates, a surge that does not
come), coming back once the minutes agree again."""

from __future__ import annotations

import random
from collections.abc import Callable

from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.forecast import DAY_MINUTES, Forecast

DAY = forecast.DAY_SECONDS
Shape = Callable[[int, int], float]
"""(day, minute of the day) -> demand."""


def _daily(_: int, minute: int) -> float:
    """300 at night, 1200 from 08:00 to 20:00, and 3600 from 20:00 to 20:15."""
    if 1200 <= minute < 1215:
        return 3600.0
    return 1200.0 if 480 <= minute < 1200 else 300.0


def _feed(model: Forecast, shape: Shape, *, days: range, noise: float = 0.0) -> Forecast:
    """One sample a minute of ``shape`` over ``days`` (a minute's mean is what is learned)."""
    rng = random.Random(3)
    for day in days:
        for minute in range(DAY_MINUTES):
            value = shape(day, minute) * (1 + rng.gauss(0.0, noise))
            model = forecast.observe(model, at=day * DAY + minute * 60 + 30, value=value)
    return model


def _minute(day: int, minute: int) -> int:
    return day * DAY_MINUTES + minute


def test_nothing_is_forecast_before_two_days_are_known() -> None:
    one = _feed(Forecast(), _daily, days=range(1))
    assert forecast.predict(one, minute=_minute(1, 600)) is None
    assert forecast.trust(one) == 0.0
    assert forecast.ready_for(one, now=DAY + 600 * 60, current=300.0, lead=120.0) == 300.0
    two = _feed(one, _daily, days=range(1, 2))
    assert forecast.predict(two, minute=_minute(2, 600)) == 1200.0


def test_the_daily_shape_is_learned_through_noise_and_one_odd_day() -> None:
    def odd(day: int, minute: int) -> float:
        return _daily(day, minute) * (10.0 if day == 3 else 1.0)

    model = _feed(Forecast(), odd, days=range(6), noise=0.05)
    for minute, expected in ((120, 300.0), (600, 1200.0), (1205, 3600.0)):
        value = forecast.predict(model, minute=_minute(6, minute))
        assert value is not None and abs(value - expected) <= 0.1 * expected, (minute, value)


def test_recent_days_weigh_more_than_older_ones() -> None:
    def grows(day: int, _: int) -> float:
        return 1000.0 if day >= 3 else 500.0

    model = _feed(Forecast(), grows, days=range(5))
    # Two days at 1000 after three at 500: the recent level wins the weighted median.
    assert forecast.predict(model, minute=_minute(5, 600)) == 1000.0


def test_a_weekday_is_forecast_from_its_own_once_two_weeks_are_known() -> None:
    def weekends(day: int, minute: int) -> float:
        return _daily(day, minute) * (0.25 if day % 7 in (2, 3) else 1.0)  # 1970-01-03: Sat

    model = _feed(Forecast(), weekends, days=range(14))
    assert forecast.predict(model, minute=_minute(16, 600)) == 300.0  # a Saturday
    assert forecast.predict(model, minute=_minute(15, 600)) == 1200.0  # a Friday
    # With one week only, the daily shape (the last days) decides.
    week = _feed(Forecast(), weekends, days=range(7))
    assert forecast.predict(week, minute=_minute(9, 600)) == 1200.0


def test_the_policy_is_raised_to_the_surge_a_lead_before_it_and_never_lowered() -> None:
    model = _feed(Forecast(), _daily, days=range(4))
    # Day 4, 19:30 to 19:58: samples agree with the shape, so it is trusted.
    for second in range(0, 28 * 60, 15):
        at = 4 * DAY + 1170 * 60 + second
        model = forecast.observe(model, at=at, value=1200.0)
    assert forecast.trust(model) == 1.0
    before = 4 * DAY + 1198 * 60
    assert forecast.ready_for(model, now=before, current=1200.0, lead=120.0) == 3600.0
    # Further off than the lead: nothing yet.
    early = 4 * DAY + 1190 * 60
    assert forecast.ready_for(model, now=early, current=1200.0, lead=120.0) == 1200.0
    # Never below the demand, whatever the forecast expects.
    assert forecast.ready_for(model, now=before, current=5000.0, lead=120.0) == 5000.0


def test_a_surge_that_does_not_come_stops_the_forecast_from_the_next_minute() -> None:
    model = _feed(Forecast(), _daily, days=range(4))
    for second in range(0, 1201 * 60 + 1, 15):  # day 4 until 20:01, no surge at 20:00
        model = forecast.observe(
            model, at=4 * DAY + second, value=_daily(4, min(second // 60, 1199))
        )
    assert model.last_error is not None and model.last_error > forecast.TRUST_HIGH
    assert forecast.trust(model) == 0.0
    at = 4 * DAY + 1201 * 60 + 5
    assert forecast.ready_for(model, now=at, current=1200.0, lead=120.0) == 1200.0
    # Once the minutes agree again, it is followed again.
    for second in range(1202 * 60, 1300 * 60, 15):
        model = forecast.observe(model, at=4 * DAY + second, value=_daily(4, second // 60))
    assert forecast.trust(model) == 1.0


def test_a_day_that_deviates_turns_it_off_and_shows_in_the_error_of_the_last_day() -> None:
    model = _feed(Forecast(), _daily, days=range(3))
    good = forecast.error_last_day(model)
    assert good is not None and good < 0.01
    model = _feed(model, lambda d, m: 0.5 * _daily(d, m), days=range(3, 4))
    assert forecast.trust(model) == 0.0
    bad = forecast.error_last_day(model)
    assert bad is not None and 0.4 < bad < 0.6


def test_samples_out_of_order_or_missing_change_nothing() -> None:
    model = forecast.observe(Forecast(), at=100.0, value=5.0)
    assert forecast.observe(model, at=100.0, value=9.0) == model
    assert forecast.observe(model, at=50.0, value=9.0) == model
    assert forecast.observe(model, at=200.0, value=None) == model
    assert forecast.observe(model, at=200.0, value=float("nan")) == model
