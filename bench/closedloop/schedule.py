"""The load of one arm: a trace compressed in time and scaled to the plant (pure).

A trace (``bench/autoscaling/traces`` format) is replayed ``compress`` times
faster, its request rate times ``api_scale`` and its job rate times
``jobs_scale``: the rates stay rates (per second of the compressed run), so a
step of the trace is a step of the run, only sooner. Locust's shape and the job
enqueuer both read the compressed trace through this module.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from bench.autoscaling.trace import Series, Trace


@dataclass(frozen=True, slots=True)
class Load:
    """How a trace becomes the load of a run."""

    compress: float = 4.0
    """Trace seconds per run second."""
    api_scale: float = 0.05
    """Requests per second of the run per request per second of the trace."""
    jobs_scale: float = 0.1
    """Jobs per second of the run per job per second of the trace."""

    def __post_init__(self) -> None:
        for name in ("compress", "api_scale", "jobs_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


def _series(series: Series, *, compress: float, scale: float) -> Series:
    start = series.starts[0]
    return Series(
        starts=tuple((t - start) / compress for t in series.starts),
        values=tuple(v * scale for v in series.values),
        end=(series.end - start) / compress,
    )


def compressed(trace: Trace, load: Load) -> Trace:
    """``trace`` as the run replays it: from t=0, ``load.compress`` times faster, scaled."""
    return Trace(
        api_rps=_series(trace.api_rps, compress=load.compress, scale=load.api_scale),
        jobs_per_s=_series(trace.jobs_per_s, compress=load.compress, scale=load.jobs_scale),
    )


def rate_at(series: Series, t: float) -> float:
    """The rate at run second ``t``: 0 before the start and from the end on."""
    if t < series.starts[0] or t >= series.end:
        return 0.0
    return series.values[bisect_right(series.starts, t) - 1]


def users_at(series: Series, t: float, *, user_rps: float) -> int:
    """Locust users that offer ``rate_at(series, t)`` at ``user_rps`` requests each."""
    return math.ceil(rate_at(series, t) / user_rps - 1e-9)


def steps(series: Series, *, ratio: float = 1.5) -> list[float]:
    """Run seconds where the rate jumps by ``ratio`` or more (up or down) from the last
    level it held for at least one step: the load steps reactions are timed from."""
    out: list[float] = []
    level = series.values[0]
    for start, value in zip(series.starts[1:], series.values[1:], strict=True):
        low, high = sorted((level, value))
        if low <= 0 < high or (low > 0 and high / low >= ratio):
            out.append(start)
            level = value
    return out
