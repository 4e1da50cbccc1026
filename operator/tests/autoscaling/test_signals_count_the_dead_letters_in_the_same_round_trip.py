"""A stream queue's dead-letter stream is counted in the tick's one round trip, on any slot.

Real Redis from the harness (standalone and a 6-node cluster). The count is an
``XLEN`` of its own in the same pipeline: a stream named without a hash tag has
its dead-letter stream in another slot of the cluster, and the count must still
come back, without failing the stream's reading. The queue sources come from a
stack's spec (``targets.queue_source``), as the loop builds them, and the tick
exports the count as ``retention_stack_dead_letters``, read on the first tick and on one
in ``DEAD_LETTER_READ_EVERY`` after it (the stream's own reads go on every tick).
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.crc import key_slot

import retention_contract as contract
from retention_operator import telemetry
from retention_operator.autoscaling import targets
from retention_operator.autoscaling.queues import StreamQueue
from retention_operator.autoscaling.signals import (
    DEAD_LETTER_READ_EVERY,
    QueueRef,
    RedisEndpoint,
    SignalReader,
)
from retention_operator.builders import env
from retention_operator.model import RetentionStack

from .conftest import Clock, make_loop, stack_body

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def _stack(name: str, stream: str | None = None) -> RetentionStack:
    queue = {} if stream is None else {"queue": {"stream": stream}}
    return RetentionStack.model_validate(
        {
            "apiVersion": "retention.dev/v1alpha1",
            "kind": "RetentionStack",
            "metadata": {"name": name, "namespace": "shop", "uid": name, "generation": 1},
            "spec": {
                "api": {"image": "app:1"},
                "workers": queue,
                "redis": {"external": {"url": "redis://r:6379"}},
                "pgbouncer": {
                    "database": {"host": "pg", "name": "app", "user": "app"},
                    "credentialsSecretRef": {"name": "pg"},
                },
            },
        }
    )


def _ref(stack: RetentionStack) -> QueueRef:
    source = targets.queue_source(stack)
    assert isinstance(source, StreamQueue)
    assert source.deadletter == contract.deadletter_stream(source.stream)
    return QueueRef(namespace=stack.namespace, stack=stack.name, source=source)


def _dead_letter(conn: Any, ref: QueueRef, count: int) -> None:
    source = ref.source
    assert isinstance(source, StreamQueue) and source.deadletter is not None
    conn.delete(source.stream, source.deadletter)
    conn.xgroup_create(source.stream, source.group, id="0", mkstream=True)
    conn.xadd(source.stream, {"job": "waiting"})
    for n in range(count):
        conn.xadd(source.deadletter, {"reason": f"failed {n}"})


async def _read(endpoint: RedisEndpoint, refs: list[QueueRef]) -> dict[QueueRef, Any]:
    reader = SignalReader(timeout=5.0)
    queries = telemetry.AUTOSCALER_QUERIES.labels(source="redis")
    try:
        before = queries._value.get()
        readings = await reader.read_queues({endpoint: refs})
        assert queries._value.get() - before == 1, "one round trip for every queue"
        return readings
    finally:
        await reader.close()


async def test_dead_letters_are_counted_beside_the_backlog(redis_db: Any) -> None:
    some, none = _ref(_stack("some")), _ref(_stack("none"))
    with redis_db.client() as conn:
        _dead_letter(conn, some, 3)
        _dead_letter(conn, none, 0)
    readings = await _read(RedisEndpoint(url=redis_db.url), [some, none])
    assert (readings[some].dead_letters, readings[some].backlog) == (3, 1)
    assert (readings[none].dead_letters, readings[none].backlog) == (0, 1)


async def test_a_dead_letter_stream_in_another_slot_is_counted_too(redis_cluster: Any) -> None:
    tagged = _ref(_stack("tagged"))
    untagged = _ref(_stack("untagged", stream="orders-jobs"))
    source = untagged.source
    assert isinstance(source, StreamQueue) and source.deadletter is not None
    assert key_slot(source.stream.encode()) != key_slot(source.deadletter.encode())
    with redis_cluster.client() as conn:
        _dead_letter(conn, tagged, 2)
        _dead_letter(conn, untagged, 5)
    endpoint = RedisEndpoint(url=redis_cluster.url, cluster=True)
    readings = await _read(endpoint, [tagged, untagged])
    for ref, count in ((tagged, 2), (untagged, 5)):
        assert readings[ref].error is None
        assert readings[ref].backlog == 1
        assert readings[ref].dead_letters == count


async def test_a_tick_exports_each_stacks_dead_letters_every_few_ticks(
    redis_db: Any, kube: Any
) -> None:
    body = stack_body("billing", redis_url=redis_db.url)
    stack = RetentionStack.model_validate(body)
    with redis_db.client() as conn:
        _dead_letter(conn, _ref(stack), 4)
    kube.add_stack(body)
    reader = SignalReader(timeout=5.0)
    loop = make_loop(kube, reader, Clock())
    loop.track(body)
    gauge = telemetry.STACK_DEAD_LETTERS.labels("shop", "billing")
    try:
        await loop.tick()
        assert gauge._value.get() == 4
        with redis_db.client() as conn:
            conn.xadd(contract.deadletter_stream(env.queue_stream(stack)), {"reason": "again"})
        # The length is read on one tick in DEAD_LETTER_READ_EVERY; the gauge keeps its value
        # in between.
        for _ in range(DEAD_LETTER_READ_EVERY - 1):
            await loop.tick()
            assert gauge._value.get() == 4
        await loop.tick()
        assert gauge._value.get() == 5
    finally:
        await reader.close()
        telemetry.forget_stack("shop", "billing")
