"""The forecast's history does not hold up the ticks: a tick that wants the history of a
thousand stacks goes on at once (the stacks are scaled reactively meanwhile), the
history is read a batch of stacks at a time (so one batch's points are held, not every
stack's) and learned off the event loop's thread, and a stack deleted or turned off
while it waits is not seeded."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from retention_operator.autoscaling import forecast, history
from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.settings import Settings

DAY = forecast.DAY_SECONDS
NOW = 30 * DAY + 12 * 3600
STACKS = 12


def _history() -> list[tuple[float, float]]:
    """A day and a half, a point a minute, at 100 req/s."""
    return [(NOW - 1.5 * DAY + minute * 60.0 + 30.0, 100.0) for minute in range(2160)]


@pytest.fixture
def loop(kube: Any, reader: Any, clock: Any, make_stack: Any) -> AutoscalingLoop:
    clock.now = NOW
    ours = Settings(prometheus_url="http://127.0.0.1:9", tick_seconds=1.0)
    made = AutoscalingLoop(kube=kube, settings=ours, reader=reader, clock=clock)
    points = _history()
    for n in range(STACKS):
        body = make_stack(f"s{n}")
        kube.add_stack(body)
        reader.history[f"s{n}"] = points
        made.track(body)
    return made


async def test_the_tick_goes_on_while_histories_are_read_in_batches(
    loop: AutoscalingLoop, reader: Any, kube: Any, clock: Any, monkeypatch: Any
) -> None:
    gate = asyncio.Event()
    read = reader.read_history

    async def slow(stacks: Any, *, start: float, end: float) -> Any:
        await gate.wait()
        return await read(stacks, start=start, end=end)

    monkeypatch.setattr(reader, "read_history", slow)
    threads: list[int] = []
    learn = forecast.learn

    def watched(model: forecast.Forecast, points: Any) -> forecast.Forecast:
        threads.append(threading.get_ident())
        return learn(model, points)

    monkeypatch.setattr(forecast, "learn", watched)

    report = await loop.tick()
    # Decided and written while no history has been read yet.
    assert report.stacks == STACKS and report.errors == 0
    assert kube.status[("shop", "s0")]["autoscaling"]["api"]["forecast"]["daysLearned"] == 0
    assert loop.history.pending > 0

    gate.set()
    await loop.history.idle()
    batches = [sum(len(keys) for keys in stacks.values()) for stacks, _, _ in reader.history_calls]
    assert sum(batches) == STACKS
    assert max(batches) <= history.BATCH_STACKS
    assert len(threads) == STACKS and threading.get_ident() not in threads

    clock.advance(1.0)
    await loop.tick()
    for n in range(STACKS):
        shown = kube.status[("shop", f"s{n}")]["autoscaling"]["api"]["forecast"]
        assert shown["daysLearned"] == 1


async def test_a_stack_forgotten_while_it_waits_is_neither_read_nor_seeded(
    loop: AutoscalingLoop, reader: Any
) -> None:
    await loop.tick()
    loop.forget("shop", f"s{STACKS - 1}")
    await loop.history.idle()
    read = {
        key for stacks, _, _ in reader.history_calls for keys in stacks.values() for key in keys
    }
    assert ("shop", f"s{STACKS - 1}") not in read
    assert len(read) == STACKS - 1
