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
    it so that the window is covered; samples without a value are left out.

    Walked from the newest sample back to the first at or before the window's start,
    so the cost is the window's, not the whole history's.
    """
    points: list[tuple[float, float]] = []
    horizon: float | None = None
    for sample in reversed(history):
        v = value(sample)
        if v is None:
            continue
        points.append((sample.at, v))
        if horizon is None:
            horizon = sample.at - window
        if sample.at <= horizon:
            break
    points.reverse()
    return points


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
    newest: tuple[float, float] | None = None
    for sample in reversed(history):
        v = value(sample)
        if v is None:
            continue
        if newest is None:
            newest = (sample.at, v)
        elif newest[0] - sample.at >= lookback:
            return (newest[1] - v) / (newest[0] - sample.at)
    return None


def values_since(
    history: SignalHistory[T], value: Callable[[T], float | None], *, at: float
) -> Sequence[float]:
    """The non-missing values of samples taken at or after ``at``."""
    return [v for s in history.since(at) if (v := value(s)) is not None]
