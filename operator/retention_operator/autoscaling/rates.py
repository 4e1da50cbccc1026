"""Rates and trends derived from a component's signal history.

Pure helpers for the policy. Each returns None when the history cannot support
an answer (fewer than two usable samples, no time between them), never zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import TypeVar

from retention_operator.autoscaling.samples import SignalHistory, _Timed

T = TypeVar("T", bound=_Timed)


def _points(
    history: SignalHistory[T], value: Callable[[T], float | None], *, window: float
) -> list[tuple[float, float]]:
    """The (at, value) pairs of the last ``window`` seconds, plus the one just before
    it so that the window is covered; samples without a value are left out."""
    points = [(s.at, v) for s in history if (v := value(s)) is not None]
    if not points:
        return []
    horizon = points[-1][0] - window
    first = 0
    for index, (at, _) in enumerate(points):
        if at <= horizon:
            first = index
    return points[first:]


def counter_rate(
    history: SignalHistory[T], value: Callable[[T], float | None], *, window: float
) -> float | None:
    """Per-second increase of a monotonic counter over about the last ``window`` seconds.

    A decrease is a counter reset: the new value counts as the increase since the
    reset, as Prometheus's ``rate`` does. None if fewer than two samples have a value.
    """
    points = _points(history, value, window=window)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    increase = 0.0
    for (_, before), (_, after) in pairwise(points):
        increase += after - before if after >= before else after
    return increase / (points[-1][0] - points[0][0])


def gauge_slope(
    history: SignalHistory[T], value: Callable[[T], float | None], *, lookback: float
) -> float | None:
    """Per-second change of a gauge between the newest sample and the newest one at
    least ``lookback`` seconds older. None if there is no such pair."""
    points = [(s.at, v) for s in history if (v := value(s)) is not None]
    if len(points) < 2:
        return None
    newest_at, newest = points[-1]
    for at, old in reversed(points[:-1]):
        if newest_at - at >= lookback:
            return (newest - old) / (newest_at - at)
    return None


def values_since(
    history: SignalHistory[T], value: Callable[[T], float | None], *, at: float
) -> Sequence[float]:
    """The non-missing values of samples taken at or after ``at``."""
    return [v for s in history.since(at) if (v := value(s)) is not None]
