"""Every queue kind's read runs on a replica, as a user who may only read, and at maxmemory.

The tick's reads are read commands and scripts flagged ``no-writes``: Redis 7 runs
such a script on a read-only replica, for a user whose ACL allows reads, ``EVAL`` and
``TIME`` and nothing else, and on a server at its ``maxmemory`` with ``noeviction``
(a queue that outgrew its memory, whose backlog is then what matters most), where a
write, or a script declared without the flag, is refused. Real Redis from the harness:
the session's standalone server as the master, a second one started here as its
replica.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError, ReadOnlyError, ResponseError

from harness.services import start_redis
from retention_operator.autoscaling.queues import (
    BullMQQueue,
    CeleryQueue,
    ListQueue,
    QueueReading,
    RQQueue,
    StreamQueue,
)
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint, SignalReader

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

SOURCES = (
    StreamQueue(stream="{shop/a}:jobs", group="workers"),
    StreamQueue(stream="{shop/absent}:jobs", group="workers"),
    BullMQQueue(name="mail"),
    RQQueue(),
    CeleryQueue(),
    ListQueue(key="jobs", in_progress_key="jobs:busy"),
)
# Reads, the scripts, TIME (which the scripts call) and the connection's own commands.
READER_ACL = ["on", "~*", "resetchannels", "-@all", "+@read", "+@connection", "+eval", "+time"]


def _fill(conn: Any) -> None:
    """Something in every kind: a stream with a group and one job delivered of three, a
    waiting BullMQ job, RQ, Celery and list entries."""
    stream = SOURCES[0]
    assert isinstance(stream, StreamQueue)
    conn.xgroup_create(stream.stream, stream.group, id="0", mkstream=True)
    for n in range(3):
        conn.xadd(stream.stream, {"job": str(n)})
    conn.xreadgroup(stream.group, "w1", {stream.stream: ">"}, count=1)
    conn.rpush("bull:mail:wait", "7")
    conn.hset("bull:mail:7", mapping={"timestamp": int(time.time() * 1000), "opts": "{}"})
    conn.set("bull:mail:id", 7)
    conn.rpush("rq:queue:default", "j1", "j2")
    conn.rpush("celery", "m1")
    conn.rpush("jobs", "a", "b")
    conn.rpush("jobs:busy", "c")


async def _read(url: str) -> dict[QueueRef, QueueReading]:
    refs = [QueueRef(namespace="shop", stack=f"s{n}", source=s) for n, s in enumerate(SOURCES)]
    reader = SignalReader(timeout=5.0)
    try:
        return await reader.read_queues({RedisEndpoint(url=url): refs})
    finally:
        await reader.close()


def _counts(readings: dict[QueueRef, QueueReading]) -> dict[str, tuple[object, ...]]:
    """What each reading says, apart from when it was taken and how long jobs waited
    (which moves between two reads)."""
    return {
        ref.stack: (r.error, r.backlog, r.lag, r.pending, r.arrivals_total, r.completed_total)
        for ref, r in readings.items()
    }


def _wait_synced(replica: Any, master: Any) -> None:
    master.set("synced", "yes")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = replica.info("replication")
        if info.get("master_link_status") == "up" and replica.get("synced") == "yes":
            return
        time.sleep(0.2)
    raise AssertionError(f"the replica never synced: {replica.info('replication')}")


async def test_every_kind_reads_the_same_on_a_replica_as_a_reader_and_at_maxmemory(
    redis_db: Any, tmp_path: Path
) -> None:
    user, password = "reader", uuid.uuid4().hex
    with redis_db.client() as conn:
        _fill(conn)
        conn.acl_setuser(user, reset=True)
        conn.execute_command("ACL", "SETUSER", user, f">{password}", *READER_ACL)
        try:
            on_master = await _read(redis_db.url)
            as_reader = await _read(f"redis://{user}:{password}@{redis_db.host}:{redis_db.port}/0")
            with redis.Redis(
                host=redis_db.host, port=redis_db.port, username=user, password=password
            ) as reader_conn:
                with pytest.raises(NoPermissionError):
                    reader_conn.set("x", "1")
                with pytest.raises(ResponseError, match="run this command"):
                    reader_conn.eval("return redis.call('SET', 'x', '1')", 0)
        finally:
            conn.acl_deluser(user)
        conn.config_set("maxmemory-policy", "noeviction")
        conn.config_set("maxmemory", "1")
        try:
            with pytest.raises(ResponseError, match="maxmemory"):
                conn.set("x", "1")
            at_maxmemory = await _read(redis_db.url)
        finally:
            conn.config_set("maxmemory", "0")
        replica = start_redis(base_dir=tmp_path, name="replica")
        try:
            with replica.client() as replica_conn:
                replica_conn.replicaof(redis_db.host, redis_db.port)
                _wait_synced(replica_conn, conn)
                on_replica = await _read(replica.url)
                with pytest.raises(ReadOnlyError):
                    replica_conn.set("x", "1")
        finally:
            replica.stop()
    for name, readings in (
        ("a read-only user", as_reader),
        ("maxmemory", at_maxmemory),
        ("the replica", on_replica),
    ):
        assert _counts(readings) == _counts(on_master), name
    counts = _counts(on_master)
    assert counts["s0"] == (None, 3, 2, 1, 3, 0), "stream: 2 waiting, 1 delivered"
    assert counts["s1"][:2] == (None, 0), "a stream that does not exist is empty"
    assert [c[0] for c in counts.values()] == [None] * len(SOURCES), counts
    assert [c[1] for c in counts.values()] == [3, 0, 1, 2, 1, 3]
