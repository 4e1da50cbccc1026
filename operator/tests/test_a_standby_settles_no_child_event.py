"""A standby replica (kopf peering) settles nothing when a child changes.

kopf freezes a standby's handlers, not the children cache's listener: without
the leadership check both replicas put back drift, run the Redis Cluster step
and write status (the fault test of a killed leader saw the standby patch a
stack's status while the leader lived).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import kopf
import pytest

from retention_operator import handlers, reconcile
from retention_operator.autoscaling.leadership import Leadership
from retention_operator.settings import Settings

PEERING = Settings(peering_name="ops", peering_priority=99)


class _Work:
    def __init__(self) -> None:
        self.submitted: list[Callable[[], Awaitable[None]]] = []

    def submit(self, key: object, level: object, fn: Callable[[], Awaitable[None]]) -> None:
        self.submitted.append(fn)


class _Peering:
    """A kube client that serves one ClusterKopfPeering status, or fails."""

    def __init__(self, status: dict[str, Any] | None) -> None:
        self.status, self.reads = status, 0

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Any:
        self.reads += 1
        if self.status is None:
            raise httpx.ConnectError("refused")
        return {"status": self.status}


def _peer(priority: int) -> dict[str, object]:
    return {"priority": priority, "lastseen": dt.datetime.now(dt.UTC).isoformat(), "lifetime": 60}


async def _settle_calls(leader_priority: int, monkeypatch: pytest.MonkeyPatch) -> int:
    calls: list[dict[str, Any]] = []

    async def settle(*_: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    monkeypatch.setattr(reconcile, "settle", settle)
    kube = _Peering({"leader": _peer(leader_priority), "me": _peer(99)})
    memo = kopf.Memo(settings=PEERING, work=_Work(), kube=kube)
    memo.leadership = Leadership(kube, PEERING)  # type: ignore[arg-type]
    child = {
        "kind": "Deployment",
        "metadata": {"namespace": "ns", "labels": {"retention.dev/stack": "s"}},
    }
    handlers.child_listener(memo)("Deployment", None, child)
    for fn in memo.work.submitted:
        await fn()
    return len(calls)


async def test_a_standby_does_not_settle_and_the_leader_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await _settle_calls(100, monkeypatch) == 0
    assert await _settle_calls(50, monkeypatch) == 1


async def test_leadership_is_reused_for_its_ttl_and_a_failed_read_is_no() -> None:
    kube = _Peering({"me": _peer(99)})
    cached = Leadership(kube, PEERING, ttl=60)  # type: ignore[arg-type]
    assert await cached.leads() and await cached.leads()
    assert kube.reads == 1
    assert not await Leadership(_Peering(None), PEERING).leads()  # type: ignore[arg-type]
