"""At a stack's first tick the loop wants its API's request rate of the last four weeks
from Prometheus (here the fake reader), once, and seeds the forecast with it as soon as
it is learned, beside the ticks: the status then shows the days learned and a surge the
history knows is met ahead; a stack with the forecast off is not asked about."""

from __future__ import annotations

from typing import Any

from retention_operator.autoscaling import forecast

from .conftest import make_loop

DAY = forecast.DAY_SECONDS
NOW = 30 * DAY + 20 * 3600 - 90  # 19:58:30 on a day 30 days after the epoch


def _history() -> list[tuple[float, float]]:
    """Three days and a half, a point a minute: 100 req/s, 1,500 from 20:00 to 20:15."""
    points = []
    at = NOW - 3.5 * DAY
    while at < NOW - 30:
        minute = int(at % DAY) // 60
        points.append((at, 1500.0 if 1200 <= minute < 1215 else 100.0))
        at += 60
    return points


async def test_the_history_seeds_the_forecast_at_the_first_tick_only(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    clock.now = NOW
    body = make_stack(
        "a", api={"maxReplicas": 30, "autoscaling": {"requestsPerReplicaPerSecond": 100}}
    )
    kube.add_stack(body)
    reader.history["a"] = _history()
    reader.rps["a"] = 100.0
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    await loop.tick()
    await loop.history.idle()
    ((_, start, end),) = reader.history_calls
    assert end - start == forecast.KEPT_DAYS * DAY
    clock.advance(1.0)
    await loop.tick()
    shown = kube.status[("shop", "a")]["autoscaling"]["api"]["forecast"]
    assert shown["daysLearned"] == 3 and shown["inUse"] is True
    # 1,500 req/s expected within the lead, at 100 per replica: brought in before 20:00.
    assert kube.deployments[("shop", "a-api")]["spec"]["replicas"] >= 15
    clock.advance(1.0)
    await loop.tick()
    assert len(reader.history_calls) == 1


async def test_a_stack_with_the_forecast_off_is_not_asked_about(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    clock.now = NOW
    body = make_stack("b", api={"autoscaling": {"forecast": False}})
    kube.add_stack(body)
    reader.history["b"] = _history()
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    await loop.tick()
    await loop.history.idle()
    assert reader.history_calls == []
    assert "forecast" not in kube.status[("shop", "b")]["autoscaling"]["api"]
