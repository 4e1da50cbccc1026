"""A stack whose status says a Redis replica is syncing is refreshed again later, until it is not.

No child event announces the end of a replica's sync (the pod was ready
long before), so a settle that wrote such a status asks for another status
refresh after ``retry_seconds``; the refresh only reads (no repair, no Redis
step) and shares the key of a child's status refresh. A cluster still
converging asks for a settle that runs the Redis step, with the key of the
Redis StatefulSet's own event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import kopf
import pytest

from retention_operator import handlers, names, reconcile
from retention_operator.kube.limiter import Priority
from retention_operator.settings import Settings

SETTINGS = Settings(retry_seconds=0.05)


class _Work:
    def __init__(self) -> None:
        self.submitted: list[tuple[object, object, Callable[[], Awaitable[None]]]] = []

    def submit(self, key: object, level: object, fn: Callable[[], Awaitable[None]]) -> None:
        self.submitted.append((key, level, fn))

    async def run(self, level: object, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await fn()


async def test_refreshes_follow_while_a_replica_syncs_and_stop_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When to settle again: syncing, syncing, synced.
    answers = [reconcile.Recheck(0.05), reconcile.Recheck(0.05), None]
    calls: list[dict[str, Any]] = []

    async def settle(*_: Any, **kwargs: Any) -> reconcile.Recheck | None:
        calls.append(kwargs)
        return answers[len(calls) - 1]

    monkeypatch.setattr(reconcile, "settle", settle)
    work = _Work()
    memo = kopf.Memo(settings=SETTINGS, work=work, kube=object())
    statefulset = {
        "kind": "StatefulSet",
        "metadata": {
            "namespace": "ns",
            "labels": {names.LABEL_STACK: "s", names.LABEL_COMPONENT: names.COMPONENT_REDIS},
        },
        "status": {"readyReplicas": 6},
    }
    handlers.child_listener(memo)("StatefulSet", {**statefulset, "status": {}}, statefulset)

    for _ in range(3):
        assert work.submitted, calls
        _, _, fn = work.submitted.pop()
        await fn()
        await asyncio.sleep(0.2)  # past retry_seconds, with its jitter

    assert work.submitted == []
    assert [(c["repair"], c.get("redis_step", False)) for c in calls] == [
        (False, True),
        (False, False),
        (False, False),
    ]


async def test_the_refresh_has_the_key_and_priority_of_a_status_refresh() -> None:
    work = _Work()
    memo = kopf.Memo(settings=SETTINGS, work=work, kube=object())

    handlers.recheck(memo, "ns", "s", reconcile.Recheck(0.05))
    await asyncio.sleep(0.2)

    assert [(key, level) for key, level, _ in work.submitted] == [
        (("ns", "s", False, False), Priority.REFRESH)
    ]


async def test_a_recheck_of_a_converging_cluster_runs_the_redis_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    async def settle(*_: Any, **kwargs: Any) -> reconcile.Recheck | None:
        calls.append(kwargs)
        return None

    monkeypatch.setattr(reconcile, "settle", settle)
    work = _Work()
    memo = kopf.Memo(settings=SETTINGS, work=work, kube=object())

    handlers.recheck(memo, "ns", "s", reconcile.Recheck(0.05, redis_step=True))
    await asyncio.sleep(0.2)
    # The key of the Redis StatefulSet's own event, so that the two coalesce.
    assert [key for key, _, _ in work.submitted] == [("ns", "s", False, True)]
    await work.submitted[0][2]()
    assert [(c["repair"], c["redis_step"]) for c in calls] == [(False, True)]


async def test_a_reconcile_that_leaves_a_replica_syncing_asks_for_a_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def reconcile_stack(*_: Any, **__: Any) -> reconcile.Outcome:
        return reconcile.Outcome(recheck=reconcile.Recheck(0.05))

    monkeypatch.setattr(reconcile, "reconcile_stack", reconcile_stack)
    work = _Work()
    memo = kopf.Memo(settings=SETTINGS, work=work, kube=object())
    body = {"metadata": {"namespace": "ns", "name": "s", "generation": 1}}

    # kopf's decorator types the handler as kopf calls it, with every keyword.
    handler = cast(Callable[..., Awaitable[None]], handlers.reconcile_stack)
    await handler(body=body, memo=memo, retry=0)
    await asyncio.sleep(0.2)

    assert [key for key, _, _ in work.submitted] == [("ns", "s", False, False)]
