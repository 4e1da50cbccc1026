"""After minutes at rest, a moved signal or an edited spec still acts on the next tick.

The tick reads only the recent end of each history and derives what it reads and
how it decides from the spec when it hears of a stack, not on every tick. These
tests show that nothing of the reaction was lost to that: the loop rests for ten
minutes (a full history) and then must scale on the very next tick. The rates
read from the history's end are checked against the whole-history definitions.
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.autoscaling.rates import counter_rate, gauge_slope, values_since
from retention_operator.autoscaling.samples import SignalHistory, WorkerSample

from .conftest import make_loop

TICK = 5.0
REST_TICKS = 130  # more than the history's ten minutes


async def _rest(loop: AutoscalingLoop, clock: Any) -> None:
    for _ in range(REST_TICKS):
        clock.advance(TICK)
        report = await loop.tick()
        assert report.replica_writes == 0


async def test_a_backlog_after_a_long_rest_scales_workers_on_the_next_tick(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body)
    loop = make_loop(kube, reader, clock, tick_seconds=TICK)
    loop.track(body)
    await _rest(loop, clock)
    reader.backlog["a"] = 6000
    clock.advance(TICK)
    report = await loop.tick()
    assert report.replica_writes == 1
    assert kube.replicas("shop", "a-workers") > 1


async def test_a_spec_edit_after_a_long_rest_is_decided_on_the_next_tick(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a", workers={"minReplicas": 1, "maxReplicas": 20})
    kube.add_stack(body, workers=1)
    loop = make_loop(kube, reader, clock, tick_seconds=TICK)
    loop.track(body)
    await _rest(loop, clock)
    loop.track(make_stack("a", workers={"minReplicas": 4, "maxReplicas": 20}))
    clock.advance(TICK)
    report = await loop.tick()
    assert report.replica_writes == 1
    assert kube.replicas("shop", "a-workers") == 4


# --- The history's end against the whole history ------------------------------------------


def _whole_points(samples: list[WorkerSample], window: float) -> list[tuple[float, float]]:
    points = [(s.at, s.arrivals_total) for s in samples if s.arrivals_total is not None]
    if not points:
        return []
    horizon = points[-1][0] - window
    first = 0
    for index, (at, _) in enumerate(points):
        if at <= horizon:
            first = index
    return points[first:]  # type: ignore[return-value]


def _whole_rate(samples: list[WorkerSample], window: float) -> float | None:
    points = _whole_points(samples, window)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    increase = 0.0
    for (_, before), (_, after) in pairwise(points):
        increase += after - before if after >= before else after
    return increase / (points[-1][0] - points[0][0])


def _whole_slope(samples: list[WorkerSample], lookback: float) -> float | None:
    points = [(s.at, s.backlog) for s in samples if s.backlog is not None]
    if len(points) < 2:
        return None
    newest_at, newest = points[-1]
    for at, old in reversed(points[:-1]):
        if newest_at - at >= lookback:
            return (newest - old) / (newest_at - at)  # type: ignore[operator]
    return None


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(0, 200),
    window=st.sampled_from([0.0, 5.0, 15.0, 30.0, 600.0, 1000.0]),
)
def test_rates_from_the_end_equal_rates_over_the_whole_history(
    seed: int, count: int, window: float
) -> None:
    rng = random.Random(seed)
    history: SignalHistory[WorkerSample] = SignalHistory()
    samples: list[WorkerSample] = []
    at, total = 0.0, 0.0
    for _ in range(count):
        at += rng.choice([1.0, 5.0, 5.0, 7.5])
        total = total + rng.randint(0, 50) if rng.random() > 0.05 else 0.0  # resets too
        sample = WorkerSample(
            at=at,
            backlog=None if rng.random() < 0.2 else float(rng.randint(0, 100)),
            arrivals_total=None if rng.random() < 0.2 else total,
            completed_total=None,
        )
        if history.append(sample):
            samples.append(sample)
    kept = list(history)  # the history's own bounds apply to both sides

    def arrivals(s: WorkerSample) -> float | None:
        return s.arrivals_total

    def backlog(s: WorkerSample) -> float | None:
        return s.backlog

    assert counter_rate(history, arrivals, window=window) == _whole_rate(kept, window)
    assert gauge_slope(history, backlog, lookback=window) == _whole_slope(kept, window)
    since = at - window
    assert list(values_since(history, backlog, at=since)) == [
        s.backlog for s in kept if s.at >= since and s.backlog is not None
    ]
