"""A Redis Cluster that cannot be reached (or refuses the password) fails only its own stacks'
queue readings: the tick goes on for every other endpoint.

redis-py's cluster client raises ``RedisClusterException`` when no startup node answers,
and that class is not a ``RedisError``; a read that let it through failed the whole tick
of every stack (seen after a stack was deleted and applied again with a new Redis password).
"""

from __future__ import annotations

import asyncio
import socket

from redis.exceptions import AuthenticationError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError

from retention_operator.autoscaling import signals
from retention_operator.autoscaling.queues import StreamQueue
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint, SignalReader


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_cluster_endpoint_that_cannot_connect_gives_missing_readings_for_its_stacks() -> None:
    port = _closed_port()
    secret = "s3cret-value"
    cluster = RedisEndpoint(f"redis://127.0.0.1:{port}/0", cluster=True, password=secret)
    single = RedisEndpoint(f"redis://127.0.0.1:{port}/1", cluster=False)
    refs = {
        cluster: [QueueRef("a", "one", StreamQueue(stream="{a/one}:jobs", group="w"))],
        single: [QueueRef("b", "two", StreamQueue(stream="{b/two}:jobs", group="w"))],
    }
    reader = SignalReader(timeout=2.0)

    readings = asyncio.run(reader.read_queues(refs))

    assert set(readings) == {ref for group in refs.values() for ref in group}
    for ref, reading in readings.items():
        assert reading.backlog is None, ref
        assert reading.error and "did not answer" in reading.error, ref
    (clustered,) = refs[cluster]
    assert "RedisClusterException" in str(readings[clustered].error)
    assert secret not in str(readings[clustered].error)


def _raised_from(cause: BaseException) -> BaseException:
    """A RedisClusterException raised from ``cause``, as the cluster client raises it."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise RedisClusterException("Redis Cluster cannot be connected.") from exc
    except RedisClusterException as outer:
        return outer


def test_a_refused_password_is_told_apart_from_an_unreachable_cluster() -> None:
    refused = _raised_from(AuthenticationError("invalid username-password pair"))
    unreachable = _raised_from(RedisConnectionError("Error 111 connecting"))
    assert signals._refused_password(refused)
    assert signals._refused_password(AuthenticationError("WRONGPASS"))
    assert not signals._refused_password(unreachable)
    assert not signals._refused_password(TimeoutError())
