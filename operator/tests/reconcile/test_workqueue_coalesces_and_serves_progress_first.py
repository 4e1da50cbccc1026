"""The work queue: bounded, by priority, one pending settle per stack, failures tried again."""

from __future__ import annotations

import asyncio

import pytest

from retention_operator.kube.limiter import Priority, current_priority
from retention_operator.reconcile import workqueue
from retention_operator.reconcile.workqueue import WorkQueue


async def _drain(queue: WorkQueue) -> None:
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not queue.running and not queue.waiting and not queue._pending:
            return


async def test_a_burst_of_submits_for_one_key_runs_once() -> None:
    queue = WorkQueue(workers=1)
    runs = 0
    gate = asyncio.Event()

    async def blocker() -> None:
        await gate.wait()

    async def work() -> None:
        nonlocal runs
        runs += 1

    queue.submit("other", Priority.NORMAL, blocker)
    for _ in range(50):
        queue.submit("stack", Priority.REFRESH, work)
    gate.set()
    await _drain(queue)
    assert runs == 1


async def test_a_submit_while_running_asks_for_one_more_run() -> None:
    queue = WorkQueue(workers=2)
    started, release = asyncio.Event(), asyncio.Event()
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            await release.wait()

    queue.submit("stack", Priority.REFRESH, work)
    await started.wait()
    for _ in range(5):
        queue.submit("stack", Priority.REFRESH, work)
    release.set()
    await _drain(queue)
    assert runs == 2


async def test_run_serves_progress_before_refresh_and_sets_the_request_priority() -> None:
    queue = WorkQueue(workers=1)
    gate = asyncio.Event()
    seen: list[tuple[str, Priority]] = []

    async def hold() -> None:
        await gate.wait()

    async def record(label: str) -> None:
        seen.append((label, current_priority()))

    holder = asyncio.create_task(queue.run(Priority.NORMAL, hold))
    await asyncio.sleep(0)
    later = asyncio.create_task(queue.run(Priority.REFRESH, lambda: record("refresh")))
    sooner = asyncio.create_task(queue.run(Priority.PROGRESS, lambda: record("progress")))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, later, sooner)
    assert seen == [("progress", Priority.PROGRESS), ("refresh", Priority.REFRESH)]


async def test_failed_work_is_tried_again_after_a_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workqueue, "RETRY_BASE_SECONDS", 0.01)
    queue = WorkQueue(workers=1)
    attempts = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("API server away")
        done.set()

    queue.submit("stack", Priority.PROGRESS, flaky)
    await asyncio.wait_for(done.wait(), 5)
    assert attempts == 3
