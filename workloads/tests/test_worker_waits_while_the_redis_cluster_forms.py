"""A worker that starts before its Redis Cluster is formed waits for it instead of exiting.

On a new stack the worker pods start while the operator is still assigning
slots; redis-py's cluster client then raises "All slots are not covered".
Exiting would put the pod in CrashLoopBackOff and delay the stack by the
back-off; waiting lets it consume as soon as the cluster is whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import RedisClusterException

from retention_workloads import worker


def test_a_cluster_without_all_slots_is_a_passing_state() -> None:
    exc = RedisClusterException(
        "All slots are not covered after query all startup_nodes. 0 of 16384 covered..."
    )
    assert worker.is_transient(exc)


async def test_prepare_retries_until_the_cluster_is_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def ensure_group(_: Any) -> None:
        calls.append("group")
        if len(calls) < 3:
            raise RedisClusterException("All slots are not covered after query all startup_nodes.")

    async def ensure_schema(_: Any) -> None:
        calls.append("schema")

    monkeypatch.setattr(worker.queue, "ensure_group", ensure_group)
    monkeypatch.setattr(worker.db, "ensure_schema", ensure_schema)
    ready = await asyncio.wait_for(worker._prepare(object(), object(), asyncio.Event()), 10)  # type: ignore[arg-type]
    assert ready is True
    assert calls == ["group", "group", "group", "schema"]


def test_uvloops_closed_transport_error_is_a_passing_state_and_others_are_not() -> None:
    # What uvloop raises writing to a connection the peer closed (MagicStack/uvloop#506).
    closed = RuntimeError(
        "unable to perform operation on <TCPTransport closed=True reading=False 0x84>; "
        "the handler is closed"
    )
    assert worker.is_transient(closed)
    assert worker.queue.is_unavailable(closed)
    assert not worker.queue.is_unavailable(RuntimeError("Event loop is closed"))


def test_a_torn_down_connections_writer_error_is_a_passing_state_and_others_are_not() -> None:
    # What redis-py raises writing through a connection torn down under a concurrent
    # command (redis/redis-py#4287), as the API logged it on the real node.
    torn = AttributeError("'NoneType' object has no attribute 'writelines'")
    assert worker.is_transient(torn)
    assert worker.queue.is_unavailable(torn)
    assert not worker.queue.is_unavailable(AttributeError("'Job' object has no attribute 'x'"))
    assert not worker.is_transient(TypeError("unsupported operand type(s)"))
