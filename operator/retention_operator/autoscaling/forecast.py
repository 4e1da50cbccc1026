"""The forecast: the recurring daily and weekly shape of a demand, and how far to trust it.

A :class:`Forecast` learns one demand series (the API's request rate, the jobs'
arrival rate) by the minute of the day: each minute's mean is kept per day, for
:data:`KEPT_DAYS` days. The demand expected at a minute is a robust average of the
same minute on earlier days (:func:`predict`):

* the same weekday's values, once :data:`WEEKLY_AFTER` weeks of them are known (the
  weekly shape: a Saturday is forecast from Saturdays);
* otherwise the last :data:`DAILY_DAYS` days' (the daily shape);

weighted by recency (each day older weighs :data:`RECENCY` as much), as a weighted
median from three values on (one odd day moves nothing), a mean of two. A minute no
earlier day saw has no forecast, and neither has any minute before
:data:`MIN_DAYS` days are known.

How good it has been: every completed minute is compared with what was forecast for
it before it began; the relative error feeds a moving mean (:data:`ERROR_SECONDS`)
and the error over the last day (:func:`error_last_day`, for the status). The
forecast is trusted (:func:`trust`) only while both the moving mean and the last
minute's error are small: a day that breaks the pattern, or a surge that does not
come, turns it off from the next minute on, and it comes back once the minutes agree
again. :func:`ready_for` is what the policy scales to: the current demand raised,
as far as it is trusted, to the highest demand forecast until the lead has passed.

Pure functions over a frozen :class:`Forecast`; time is seconds since the Unix epoch
(UTC days and weekdays). Nothing here reads a clock or does I/O: the loop seeds a
forecast from Prometheus' history (:func:`learn`), the policy feeds it each sample
(:func:`observe`).

What it holds: a completed day is a :class:`Day`, its minute means rounded to
multiples of a power of two and kept as 16-bit counts (2.9 KB a day, about 85 KB for
:data:`KEPT_DAYS`); the day under way stays in doubles until it completes. The
rounding is at most the day's largest minute mean / :data:`MAX_COUNT` (0.0015 % of its
peak), and a value that is a multiple of the step is kept exactly (any whole number,
on a day whose peak is below 65,534).

:func:`learn` is :func:`observe` over a history, in one pass: it learns every minute,
but judges (compares with its forecast) only the last :data:`JUDGED_MINUTES`, which is
all that :func:`error_last_day` and :func:`trust` read, over mutable arrays; judging
every minute of four weeks with a new :class:`Forecast` each was nearly all of a second
of CPU per series.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeAlias

MINUTE_SECONDS = 60.0
DAY_MINUTES = 1440
DAY_SECONDS = MINUTE_SECONDS * DAY_MINUTES
WEEK_DAYS = 7
# Days of history kept: four weeks, so that a weekday has enough of its own.
KEPT_DAYS = 28
# The daily shape is averaged over this many recent days.
DAILY_DAYS = 7
# Same-weekday values needed before the weekly shape is used instead of the daily one.
WEEKLY_AFTER = 2
# Full days of history needed before anything is forecast (a mean of two days at least).
MIN_DAYS = 2
# Weight of a day relative to the day after it.
RECENCY = 0.8
# Time constant of the moving mean of the relative error.
ERROR_SECONDS = 600.0
# Trusted fully while the errors are at most LOW, not at all from HIGH on, linearly between.
TRUST_LOW = 0.15
TRUST_HIGH = 0.30
# Minutes compared before the error means anything.
TRUST_AFTER_MINUTES = 30
# How far ahead the policy looks by default: a pod's start-up (30 s), the rate window
# by which a learned rate lags the load (60 s), and a scrape and a tick (30 s).
LEAD_SECONDS = 120.0
# Demands at most this are all alike (an idle stack): relative errors are taken against it.
ERROR_FLOOR = 1.0
# The largest count a completed day's minute keeps; NOT_SEEN marks a minute with no sample.
MAX_COUNT = 65534
NOT_SEEN = 65535
# Minutes at the end of a history that learn() judges: the last day, which is what
# error_last_day reads, and an hour before it, over which the moving error (a 10-minute
# time constant) forgets where it started (by a factor of e**-144 at the day's end).
JUDGED_MINUTES = DAY_MINUTES + 60

DayValues: TypeAlias = "array[float]"
"""The day under way's minute means (index: minute of the day), as C doubles; NaN: not
seen. 1,440 of them are 11.5 KB."""
Counts: TypeAlias = "array[int]"


@dataclass(frozen=True, slots=True)
class Day:
    """A completed day: each minute's mean is ``counts[minute] * step`` (``step`` a power
    of two, chosen by the day's largest mean), :data:`NOT_SEEN` for a minute without one.
    1,440 unsigned 16-bit counts are 2.9 KB, a quarter of the doubles they replace."""

    number: int
    counts: Counts
    step: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """What one demand series has taught.

    ``days``: completed days, oldest first, at most :data:`KEPT_DAYS`.
    ``today``: (day number, minute means so far) of the day under way.
    ``open``: (minute number, sum, count) of the minute under way. ``last_at``: the
    newest sample's time. ``error``: moving mean of the relative error (None before a
    comparison), ``last_error``: of the last compared minute, ``compared``: minutes
    compared. ``hours``: (hour number, sum of absolute errors, sum of demand) per
    hour of the last day, for :func:`error_last_day`.
    """

    days: tuple[Day, ...] = ()
    today: tuple[int, DayValues] | None = None
    open: tuple[int, float, int] | None = None
    last_at: float | None = None
    error: float | None = None
    last_error: float | None = None
    compared: int = 0
    hours: tuple[tuple[int, float, float], ...] = ()


def observe(forecast: Forecast, *, at: float, value: float | None) -> Forecast:
    """Add one sample of the demand at ``at``; a sample not newer than the last, or
    missing, changes nothing. A minute is learned (and judged) once a sample of a later
    minute arrives."""
    if value is None or not math.isfinite(value) or value < 0:
        return forecast
    if forecast.last_at is not None and at <= forecast.last_at:
        return forecast
    minute = math.floor(at / MINUTE_SECONDS)
    current = forecast.open
    if current is not None and current[0] == minute:
        _, total, count = current
        return replace(forecast, open=(minute, total + value, count + 1), last_at=at)
    if current is not None:
        forecast = _close(forecast, minute=current[0], value=current[1] / current[2])
    return replace(forecast, open=(minute, value, 1), last_at=at)


def learn(forecast: Forecast, points: Iterable[tuple[float, float | None]]) -> Forecast:
    """:func:`observe` each (time, value) of a history, oldest first (a range query's),
    except that a minute more than :data:`JUDGED_MINUTES` before the last minute the
    history completes is learned without being judged. The days, the day under way and
    the minute under way are exactly :func:`observe`'s; so are the errors of the last
    day (when the last day of the history had no forecast, every minute is judged), and
    the moving error once the judged minutes are a few hours (it forgets where it
    started); ``compared`` counts the judged minutes only.

    One pass over the history, in place: a minute not judged costs a few operations,
    a judged one a weighted median of the days it is forecast from, not a
    :func:`predict` and a new :class:`Forecast` each."""
    taken = _taken(forecast, points)
    if not taken:
        return forecast
    # The last minute these points complete: the newest minute before the newest point's.
    newest = math.floor(taken[-1][0] / MINUTE_SECONDS)
    completed = next(
        (m for at, _ in reversed(taken) if (m := math.floor(at / MINUTE_SECONDS)) < newest),
        None,
    )
    judged_from = None if completed is None else completed - JUDGED_MINUTES
    learner = _Learner(forecast, judged_from=judged_from)
    learner.feed(taken)
    if judged_from is not None and not learner.judged_its_last_day():
        # The last minutes had no forecast (a gap, too few days): the last day observe
        # judged lies further back, so judge every minute, as observe does.
        learner = _Learner(forecast, judged_from=None)
        learner.feed(taken)
    return learner.result()


def predict(forecast: Forecast, *, minute: int) -> float | None:
    """The demand forecast for the minute number ``minute`` (seconds // 60) from the
    days before it; None when none of them saw that minute or too few days are known."""
    day, position = divmod(minute, DAY_MINUTES)
    earlier = [(number, value) for number, value in _values_at(forecast, position) if number < day]
    if len(earlier) < MIN_DAYS:
        return None
    weekly: list[tuple[float, float]] = []
    daily: list[tuple[float, float]] = []
    for number, value in earlier:
        if math.isnan(value):
            continue
        age = day - number
        if age % WEEK_DAYS == 0:
            weekly.append((value, RECENCY ** (age // WEEK_DAYS - 1)))
        if age <= DAILY_DAYS:
            daily.append((value, RECENCY ** (age - 1)))
    chosen = weekly if len(weekly) >= WEEKLY_AFTER else daily
    return _robust_mean(chosen)


def ahead(forecast: Forecast, *, now: float, lead: float) -> float | None:
    """The highest demand forecast from ``now`` until ``now + lead``; None if no minute
    of that span has a forecast."""
    first = math.floor(now / MINUTE_SECONDS)
    last = math.floor((now + max(lead, 0.0)) / MINUTE_SECONDS)
    values = [predict(forecast, minute=m) for m in range(first, last + 1)]
    known = [value for value in values if value is not None]
    return max(known) if known else None


def trust(forecast: Forecast) -> float:
    """How far the forecast is to be followed, from 0 (not at all) to 1: 0 until
    :data:`TRUST_AFTER_MINUTES` minutes were compared, then by the larger of the moving
    error and the last minute's (1 at most :data:`TRUST_LOW`, 0 from :data:`TRUST_HIGH`)."""
    if forecast.compared < TRUST_AFTER_MINUTES or forecast.error is None:
        return 0.0
    worst = max(forecast.error, forecast.last_error or 0.0)
    if worst <= TRUST_LOW:
        return 1.0
    if worst >= TRUST_HIGH:
        return 0.0
    return (TRUST_HIGH - worst) / (TRUST_HIGH - TRUST_LOW)


def ready_for(forecast: Forecast, *, now: float, current: float, lead: float) -> float:
    """The demand to be ready for now: ``current`` raised, as far as the forecast is
    trusted, to the highest demand it expects within ``lead``. Never below ``current``:
    the forecast only ever adds to what the demand asks."""
    share = trust(forecast)
    if share <= 0:
        return current
    expected = ahead(forecast, now=now, lead=lead)
    if expected is None or expected <= current:
        return current
    return current + share * (expected - current)


def error_last_day(forecast: Forecast) -> float | None:
    """The forecast's relative error over the last day: the sum of absolute errors over
    the sum of the larger of demand and forecast (so 0 to 1), of the minutes compared in
    the last 24 hours; None before any."""
    if not forecast.hours:
        return None
    newest = forecast.hours[-1][0]
    errors = demand = 0.0
    for hour, error, total in forecast.hours:
        if hour > newest - 24:
            errors += error
            demand += total
    return errors / max(demand, ERROR_FLOOR)


def days_known(forecast: Forecast) -> int:
    """Full days learned so far (the day under way not counted)."""
    return len(forecast.days)


# --- Internals ---------------------------------------------------------------------------


def _values_at(forecast: Forecast, position: int) -> list[tuple[int, float]]:
    """(day number, mean of the minute at ``position``) of every day known, the day
    under way last; NaN where a day did not see that minute."""
    values = [
        (day.number, math.nan if (count := day.counts[position]) == NOT_SEEN else count * day.step)
        for day in forecast.days
    ]
    if forecast.today is not None:
        number, today = forecast.today
        values.append((number, today[position] if position < len(today) else math.nan))
    return values


def _completed(number: int, values: DayValues) -> Day:
    """The day ``number`` of minute means ``values`` (NaN: not seen), as it is kept: the
    step is the smallest power of two by which the largest mean is at most
    :data:`MAX_COUNT` steps, each mean rounded to the nearest step."""
    means = _padded(values, DAY_MINUTES)
    top = max((value for value in means if value == value), default=0.0)  # NaN != NaN
    # top / MAX_COUNT < step, so no count rounds above MAX_COUNT.
    step = math.ldexp(1.0, math.frexp(top / MAX_COUNT)[1]) if top > 0 else 1.0
    counts = array("H", [round(value / step) if value == value else NOT_SEEN for value in means])
    return Day(number=number, counts=counts, step=step)


def _taken(
    forecast: Forecast, points: Iterable[tuple[float, float | None]]
) -> list[tuple[float, float]]:
    """The points :func:`observe` would take, in order: a value that is a number, not
    negative, of a time later than every point taken before."""
    taken: list[tuple[float, float]] = []
    last_at = forecast.last_at
    isfinite = math.isfinite
    for at, value in points:
        if value is None or not isfinite(value) or value < 0:
            continue
        if last_at is not None and at <= last_at:
            continue
        taken.append((at, value))
        last_at = at
    return taken


class _Learner:
    """:func:`observe` and its ``_close`` and ``_judge``, over mutable state: the same
    arithmetic in the same order, so the same days and errors. A minute before
    ``judged_from`` is learned without being judged (None: every minute is judged)."""

    def __init__(self, forecast: Forecast, *, judged_from: int | None) -> None:
        self.start = forecast
        self.judged_from = judged_from
        # Completed days, oldest first: a Day, or (number, doubles) until one is needed.
        self.days: list[Day | tuple[int, DayValues]] = list(forecast.days)
        self.number: int | None = None
        self.today: DayValues = array("d")
        self.last_position = -1
        if forecast.today is not None:
            self.number, self.today = forecast.today[0], array("d", forecast.today[1])
            self.last_position = len(self.today) - 1
            self.today.extend(_NOT_SEEN_DAY[len(self.today) :])
        self.minute: int | None = None
        self.total, self.count = 0.0, 0
        if forecast.open is not None:
            self.minute, self.total, self.count = forecast.open
        self.last_at = forecast.last_at
        self.error, self.last_error = forecast.error, forecast.last_error
        self.compared = forecast.compared
        self.hours = list(forecast.hours)
        self.last_judged: int | None = None
        # The days a judged minute is forecast from: (day, weekly, daily), each a list
        # of (means by position, weight); None: fewer than MIN_DAYS days before it.
        self.plan: tuple[int, _Sources | None] | None = None

    def feed(self, points: list[tuple[float, float]]) -> None:
        """The points :func:`_taken` took, in order (the open minute in locals)."""
        if not points:
            return
        minute, total, count = self.minute, self.total, self.count
        floor, close = math.floor, self.close
        for at, value in points:
            this = floor(at / MINUTE_SECONDS)
            if this == minute:
                total += value
                count += 1
                continue
            if minute is not None:
                close(minute, total / count)
            minute, total, count = this, value, 1
        self.minute, self.total, self.count = minute, total, count
        self.last_at = points[-1][0]

    def close(self, minute: int, value: float) -> None:
        """``_close``: judge the minute (if due), then learn it."""
        if self.judged_from is None or minute >= self.judged_from:
            self.judge(minute, value)
        day, position = divmod(minute, DAY_MINUTES)
        if self.number is not None and self.number != day:
            del self.today[self.last_position + 1 :]
            self.days.append((self.number, self.today))
            if len(self.days) > KEPT_DAYS:
                del self.days[0]
            self.number = None
            self.plan = None
        if self.number is None:
            self.number, self.today = day, array("d", _NOT_SEEN_DAY)
        self.today[position] = value
        self.last_position = position

    def judge(self, minute: int, value: float) -> None:
        """``_judge``: compare the minute with its forecast; update the errors."""
        day, position = divmod(minute, DAY_MINUTES)
        if self.plan is None or self.plan[0] != day:
            self.plan = (day, self.sources(day))
        sources = self.plan[1]
        if sources is None:
            return
        weekly_days, daily_days = sources
        weekly = [(v, weight) for means, weight in weekly_days if (v := means[position]) == v]
        if len(weekly) >= WEEKLY_AFTER:
            expected = _robust_mean(weekly)
        else:
            daily = [(v, weight) for means, weight in daily_days if (v := means[position]) == v]
            expected = _robust_mean(daily)
        if expected is None:
            return
        miss = abs(value - expected)
        relative = miss / max(value, expected, ERROR_FLOOR)
        self.error = (
            relative if self.error is None else self.error + _ERROR_WEIGHT * (relative - self.error)
        )
        hour = minute // 60
        hours = self.hours
        if hours and hours[-1][0] == hour:
            _, errors, demand = hours[-1]
            hours[-1] = (hour, errors + miss, demand + max(value, expected))
        else:
            hours.append((hour, miss, max(value, expected)))
            self.hours = [entry for entry in hours if entry[0] > hour - 24]
        self.last_error = relative
        self.compared += 1
        self.last_judged = minute

    def judged_its_last_day(self) -> bool:
        """Whether every minute of the 24 hours that ``error_last_day`` reads (those up
        to the last minute judged) was judged if due."""
        if self.last_judged is None:
            return False
        first = (self.last_judged // 60 - 23) * 60
        return self.judged_from is None or self.judged_from <= first

    def sources(self, day: int) -> _Sources | None:
        """What :func:`predict` reads for a minute of ``day``: the days before it, the
        day under way last, each decoded once, with its weekly and daily weights."""
        self.days = [entry if isinstance(entry, Day) else _completed(*entry) for entry in self.days]
        entries: list[tuple[int, Day | DayValues]] = [
            (entry.number, entry) for entry in self.days if isinstance(entry, Day)
        ]
        if self.number is not None:
            entries.append((self.number, self.today))
        earlier = [(number, means) for number, means in entries if number < day]
        if len(earlier) < MIN_DAYS:
            return None
        weekly: list[tuple[DayValues, float]] = []
        daily: list[tuple[DayValues, float]] = []
        for number, means in earlier:
            age = day - number
            if age % WEEK_DAYS != 0 and age > DAILY_DAYS:
                continue
            decoded = _decoded(means) if isinstance(means, Day) else means
            if age % WEEK_DAYS == 0:
                weekly.append((decoded, RECENCY ** (age // WEEK_DAYS - 1)))
            if age <= DAILY_DAYS:
                daily.append((decoded, RECENCY ** (age - 1)))
        return weekly, daily

    def result(self) -> Forecast:
        today = None
        if self.number is not None:
            del self.today[self.last_position + 1 :]
            today = (self.number, self.today)
        return replace(
            self.start,
            days=tuple(
                entry if isinstance(entry, Day) else _completed(*entry) for entry in self.days
            ),
            today=today,
            open=None if self.minute is None else (self.minute, self.total, self.count),
            last_at=self.last_at,
            error=self.error,
            last_error=self.last_error,
            compared=self.compared,
            hours=tuple(self.hours),
        )


_Sources: TypeAlias = "tuple[list[tuple[DayValues, float]], list[tuple[DayValues, float]]]"


def _decoded(day: Day) -> DayValues:
    """A completed day's means by position, NaN where not seen."""
    step = day.step
    return array("d", [math.nan if count == NOT_SEEN else count * step for count in day.counts])


def _close(forecast: Forecast, *, minute: int, value: float) -> Forecast:
    """Learn a completed minute's mean, after judging what was forecast for it."""
    forecast = _judge(forecast, minute=minute, value=value)
    day, position = divmod(minute, DAY_MINUTES)
    days, today = forecast.days, forecast.today
    if today is not None and today[0] != day:
        # A new day: the one under way is complete (minutes never seen stay NaN).
        days = (*days, _completed(*today))[-KEPT_DAYS:]
        today = None
    values = _padded(today[1] if today is not None else _EMPTY, position)
    values.append(value)
    return replace(forecast, days=days, today=(day, values))


def _judge(forecast: Forecast, *, minute: int, value: float) -> Forecast:
    """Compare a completed minute with its forecast; update the errors."""
    expected = predict(forecast, minute=minute)
    if expected is None:
        return forecast
    miss = abs(value - expected)
    relative = miss / max(value, expected, ERROR_FLOOR)
    error = (
        relative
        if forecast.error is None
        else forecast.error + _ERROR_WEIGHT * (relative - forecast.error)
    )
    hour = minute // 60
    hours = list(forecast.hours)
    if hours and hours[-1][0] == hour:
        _, errors, demand = hours[-1]
        hours[-1] = (hour, errors + miss, demand + max(value, expected))
    else:
        hours.append((hour, miss, max(value, expected)))
    kept = tuple(entry for entry in hours if entry[0] > hour - 24)
    return replace(
        forecast,
        error=error,
        last_error=relative,
        compared=forecast.compared + 1,
        hours=kept,
    )


_EMPTY: DayValues = array("d")
# The weight of a minute's error in the moving mean.
_ERROR_WEIGHT = 1.0 - math.exp(-MINUTE_SECONDS / ERROR_SECONDS)
_NOT_SEEN_DAY: DayValues = array("d", [math.nan] * DAY_MINUTES)


def _padded(values: DayValues, length: int) -> DayValues:
    """A new array of ``values`` cut or filled (with NaN, not seen) to ``length``: the
    arrays of a :class:`Forecast` are never changed in place."""
    if len(values) >= length:
        return values[:length]
    padded = array("d", values)
    padded.extend([math.nan] * (length - len(values)))
    return padded


def _robust_mean(weighted: list[tuple[float, float]]) -> float | None:
    """The weighted median of (value, weight) from three values on, the mean of two, the
    value of one; None for none."""
    if not weighted:
        return None
    if len(weighted) <= 2:
        return sum(value for value, _ in weighted) / len(weighted)
    ordered = sorted(weighted)
    cumulative: list[float] = []
    total = 0.0
    for _, weight in ordered:
        total += weight
        cumulative.append(total)
    index = bisect.bisect_left(cumulative, total / 2)
    return ordered[index][0]
