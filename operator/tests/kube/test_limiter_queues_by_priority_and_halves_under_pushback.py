"""The kube layer's limiter: bounded slots, by priority, halved when the server pushes back."""

from __future__ import annotations

import asyncio

import pytest

from retention_operator.kube.limiter import Limiter, Priority, current_priority, priority


async def test_no_more_than_the_limit_runs_at_once() -> None:
    limiter = Limiter(3)
    running, peak = 0, 0

    async def one() -> None:
        nonlocal running, peak
        async with limiter.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3
    assert limiter.in_flight == 0


async def test_waiters_go_by_priority_then_in_arrival_order() -> None:
    limiter = Limiter(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await gate.wait()

    async def waiter(label: str, level: Priority) -> None:
        async with limiter.slot(level):
            order.append(label)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(waiter("refresh-1", Priority.REFRESH)),
        asyncio.create_task(waiter("normal", Priority.NORMAL)),
        asyncio.create_task(waiter("refresh-2", Priority.REFRESH)),
        asyncio.create_task(waiter("progress", Priority.PROGRESS)),
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["progress", "normal", "refresh-1", "refresh-2"]


async def test_a_long_burst_of_progress_lets_one_slot_in_four_through_to_the_oldest_below() -> None:
    limiter = Limiter(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await gate.wait()

    async def waiter(label: str, level: Priority) -> None:
        async with limiter.slot(level):
            order.append(label)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(waiter("refresh", Priority.REFRESH)),
        asyncio.create_task(waiter("normal", Priority.NORMAL)),
        *(asyncio.create_task(waiter(f"p{i}", Priority.PROGRESS)) for i in range(8)),
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["p0", "p1", "p2", "refresh", "p3", "p4", "p5", "normal", "p6", "p7"]
    assert limiter.in_flight == 0


async def test_pushback_halves_the_limit_and_answers_grow_it_back() -> None:
    limiter = Limiter(32, floor=2)
    limiter.overloaded()
    assert limiter.limit == 16
    for _ in range(10):
        limiter.overloaded()
    assert limiter.limit == 2
    for _ in range(2000):
        limiter.answered()
    assert limiter.limit == 32


async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    limiter = Limiter(1)
    gate = asyncio.Event()
    done: list[str] = []

    async def holder() -> None:
        async with limiter.slot():
            await gate.wait()

    async def waiter(label: str) -> None:
        async with limiter.slot():
            done.append(label)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(waiter("doomed"))
    kept = asyncio.create_task(waiter("kept"))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.set()
    await asyncio.gather(first, kept)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert done == ["kept"]
    assert limiter.in_flight == 0


async def test_the_priority_of_a_block_reaches_the_tasks_it_starts() -> None:
    assert current_priority() == Priority.NORMAL
    with priority(Priority.PROGRESS):
        seen = await asyncio.create_task(asyncio.sleep(0, result=current_priority()))
    assert seen == Priority.PROGRESS
    assert current_priority() == Priority.NORMAL
