"""The queue wait is the age of the oldest entry not yet delivered, read in the same round trip.

Real Redis from the harness (standalone and a 6-node cluster): entries are added
with XADD's ``*`` IDs at known times, some are delivered with XREADGROUP, and the
reader's one pipeline must date the first undelivered one by the server's clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from retention_operator import telemetry
from retention_operator.autoscaling.queues import StreamQueue
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint, SignalReader

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def _ref(name: str) -> QueueRef:
    source = StreamQueue(stream=f"{{shop/{name}}}:jobs", group="workers")
    return QueueRef(namespace="shop", stack=name, source=source)


def _queries() -> float:
    return float(telemetry.AUTOSCALER_QUERIES.labels(source="redis")._value.get())


def _fill(conn: Any, ref: QueueRef, *, delivered: int) -> list[str]:
    """Three entries 0.3 s apart, a group, and ``delivered`` of them read by a worker;
    returns the entries' IDs."""
    conn.xgroup_create(ref.source.stream, ref.source.group, id="0", mkstream=True)
    ids = []
    for n in range(3):
        ids.append(conn.xadd(ref.source.stream, {"job": str(n)}))
        time.sleep(0.3)
    if delivered:
        conn.xreadgroup(ref.source.group, "w1", {ref.source.stream: ">"}, count=delivered)
    return ids


def _age(conn: Any, entry_id: str) -> float:
    """Seconds since ``entry_id`` was added, by the server's clock."""
    seconds, micros = conn.time()
    return seconds + micros / 1e6 - int(entry_id.partition("-")[0]) / 1000


async def _read(endpoint: RedisEndpoint, refs: list[QueueRef]) -> dict[QueueRef, Any]:
    reader = SignalReader(timeout=5.0)
    try:
        before = _queries()
        readings = await reader.read_queues({endpoint: refs})
        assert _queries() - before == 1, "one round trip for every queue of the endpoint"
        return readings
    finally:
        await reader.close()


async def test_the_oldest_undelivered_entry_dates_the_wait(redis_db: Any) -> None:
    fresh, half, done, absent = (_ref(n) for n in ("fresh", "half", "done", "absent"))
    with redis_db.client() as conn:
        fresh_ids = _fill(conn, fresh, delivered=0)
        half_ids = _fill(conn, half, delivered=1)
        _fill(conn, done, delivered=3)
        readings = await _read(RedisEndpoint(url=redis_db.url), [fresh, half, done, absent])
        # Every entry of "fresh" waits, so its first dates the wait; "half" had its first
        # delivered, so its second does. The ages are taken after the read: a little older.
        expected = {fresh: _age(conn, fresh_ids[0]), half: _age(conn, half_ids[1])}
    for ref, age in expected.items():
        assert age - 0.5 <= readings[ref].queue_wait_seconds <= age
    assert readings[fresh].queue_wait_seconds > readings[half].queue_wait_seconds + 1.0
    assert readings[done].queue_wait_seconds == 0.0
    assert readings[done].pending == 3
    assert readings[absent].queue_wait_seconds == 0.0
    assert readings[half].sample().queue_wait_s == readings[half].queue_wait_seconds


async def test_a_stream_without_the_group_waits_since_its_first_entry(redis_db: Any) -> None:
    ref = _ref("nogroup")
    with redis_db.client() as conn:
        conn.xadd(ref.source.stream, {"job": "1"})
        await asyncio.sleep(0.5)
    (reading,) = (await _read(RedisEndpoint(url=redis_db.url), [ref])).values()
    assert reading.backlog == 1
    assert 0.4 <= reading.queue_wait_seconds <= 2.0


async def test_ids_chosen_by_the_application_give_no_wait(redis_db: Any) -> None:
    ref = _ref("custom")
    with redis_db.client() as conn:
        conn.xadd(ref.source.stream, {"job": "1"}, id="1-1")
        conn.xgroup_create(ref.source.stream, ref.source.group, id="0")
    (reading,) = (await _read(RedisEndpoint(url=redis_db.url), [ref])).values()
    assert reading.backlog == 1
    assert reading.queue_wait_seconds is None


async def test_a_cluster_reads_the_wait_of_streams_on_every_node(redis_cluster: Any) -> None:
    refs = [_ref(f"c{n}") for n in range(6)]
    with redis_cluster.client() as conn:
        for ref in refs:
            conn.delete(ref.source.stream)
            conn.xgroup_create(ref.source.stream, ref.source.group, id="0", mkstream=True)
            conn.xadd(ref.source.stream, {"job": "1"})
        await asyncio.sleep(0.5)
    endpoint = RedisEndpoint(url=redis_cluster.url, cluster=True)
    readings = await _read(endpoint, refs)
    for ref in refs:
        assert readings[ref].error is None
        assert 0.4 <= readings[ref].queue_wait_seconds <= 3.0
