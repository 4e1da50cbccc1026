"""A Celery queue reads as Celery itself reports it, at every step of fill and drain.

Real Celery and kombu from PyPI (the versions uv.lock pins) on real Redis standalone:
tasks are sent with priorities across kombu's priority sub-queues, and a real worker
(``celery.contrib.testing.worker.start_worker``, thread pool, ``task_acks_late`` and a
prefetch of one, as docs/contract.md asks) takes them; each holds until the test
releases it. After each step the reader's one round trip must give waiting =
``queue_declare().message_count`` and in progress = the requests the worker
holds (``celery.worker.state.reserved_requests``, which includes the running ones).

There is no cluster case: kombu 5.7's Redis transport has no Redis Cluster client, and
the CRD refuses a celery queue on a cluster.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state

from harness.procs import wait_until
from retention_operator.autoscaling.queues import CeleryQueue
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

RELEASED: defaultdict[str, threading.Event] = defaultdict(threading.Event)
HOLD_LIMIT_S = 60.0


def _app(url: str, queue: str) -> Celery:
    app = Celery("retention-test", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"queue_order_strategy": "priority"},
        worker_hijack_root_logger=False,
    )

    @app.task(name="retention_test.hold")
    def hold(tag: str) -> str:
        RELEASED[tag].wait(HOLD_LIMIT_S)
        return tag

    return app


def _report(app: Celery, queue: str) -> dict[str, int]:
    with app.connection_for_write() as conn:
        # Declaring is idempotent and answers the count kombu's _size reads.
        queued = conn.default_channel.queue_declare(queue=queue).message_count
    return {"queued": queued, "held": len(worker_state.reserved_requests)}


async def _check(read_queue: Any, endpoint: RedisEndpoint, ref: QueueRef, app: Celery) -> Any:
    assert isinstance(ref.source, CeleryQueue)
    report = _report(app, ref.source.name)
    reading = (await read_queue(endpoint, ref))[ref]
    got = (reading.backlog, reading.lag, reading.pending)
    assert got == (report["queued"] + report["held"], report["queued"], report["held"]), report
    assert reading.queue_wait_seconds is None, "kombu's messages carry no enqueue time"
    return reading


async def test_every_step_reads_as_celery_reports(redis_db: Any, read_queue: Any) -> None:
    name = f"mail-{uuid.uuid4().hex[:8]}"
    ref = QueueRef("shop", "mail", CeleryQueue(name=name))
    endpoint = RedisEndpoint(url=redis_db.url)
    app = _app(redis_db.url, name)
    hold = app.tasks["retention_test.hold"]
    tags = [f"{name}-{n}" for n in range(6)]
    empty = await _check(read_queue, endpoint, ref, app)
    assert empty.backlog == 0

    for tag, priority in zip(tags, (0, 0, 4, 4, 7, 9), strict=True):
        hold.apply_async((tag,), priority=priority)
    with redis_db.client() as conn:
        lists = {k for k in conn.keys(f"{name}*") if conn.type(k) == "list"}
    assert lists == {name, f"{name}\x06\x163", f"{name}\x06\x166", f"{name}\x06\x169"}
    filled = await _check(read_queue, endpoint, ref, app)
    assert filled.backlog == 6

    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
            wait_until(lambda: _report(app, name)["held"] == 2, what="two held", timeout=20)
            taken = await _check(read_queue, endpoint, ref, app)
            assert (taken.lag, taken.pending) == (4, 2)

            RELEASED[tags[0]].set()  # priority 0 goes first: the base list
            wait_until(lambda: _report(app, name) == {"queued": 3, "held": 2}, what="next",
                       timeout=20)  # fmt: skip
            await _check(read_queue, endpoint, ref, app)

            for tag in tags:
                RELEASED[tag].set()
            wait_until(lambda: _report(app, name) == {"queued": 0, "held": 0}, what="drained",
                       timeout=20)  # fmt: skip
            drained = await _check(read_queue, endpoint, ref, app)
            assert drained.backlog == 0
            assert drained.arrivals_total is not None and drained.arrivals_total >= 6
    finally:
        for tag in tags:
            RELEASED[tag].set()
