"""Each queue kind turns its answers into a reading; errors read as missing, not zero."""

from __future__ import annotations

from redis.exceptions import ResponseError

from retention_operator.autoscaling.queues import (
    BullMQQueue,
    CeleryQueue,
    ListQueue,
    QueueReading,
    RQQueue,
)
from retention_operator.autoscaling.signals import BacklogRises, QueueRef

NOW = ["1800000010", "500000"]  # TIME: 1_800_000_010.5 s


def test_bullmq_counts_waiting_prioritized_due_and_active() -> None:
    # wait 3, paused 1, prioritized 2, due 1 (of 4 delayed), active 2, waiting-children 1,
    # id counter 20; the oldest waits since 2.5 s before TIME.
    reply = [*NOW, 3, 1, 2, 1, 4, 2, 1, 20, 1_800_000_008_000]
    reading = BullMQQueue(name="q").parse([reply], at=1.0)
    assert (reading.backlog, reading.lag, reading.pending) == (9, 7, 2)
    assert (reading.arrivals_total, reading.completed_total) == (20, 20 - 13)
    assert reading.queue_wait_seconds == 2.5
    idle = BullMQQueue(name="q").parse([[*NOW, 0, 0, 0, 0, 0, 0, 0, 5, None]], at=1.0)
    assert (idle.backlog, idle.queue_wait_seconds, idle.completed_total) == (0, 0.0, 5)


def test_bullmq_keys_follow_its_queue_keys() -> None:
    source = BullMQQueue(name="emails", prefix="{bull}")
    assert source.key("wait") == "{bull}:emails:wait"
    assert source.key("id") == "{bull}:emails:id"


def test_rq_counts_queued_due_started_and_dates_the_head() -> None:
    reply = [*NOW, 4, 1, 2, 1, "2027-01-15T08:00:00.250000Z", "1800000000"]
    reading = RQQueue(name="default").parse([reply], at=1.0)
    assert (reading.lag, reading.pending, reading.backlog) == (5, 3, 8)
    # The due scheduled job (10.5 s ago) is older than the head of the list.
    assert reading.queue_wait_seconds == 10.5
    assert reading.arrivals_total is None, "RQ keeps no arrivals counter"
    empty = RQQueue().parse([[*NOW, 0, 0, 0, 0, None, None]], at=1.0)
    assert (empty.backlog, empty.queue_wait_seconds) == (0, 0.0)


def test_celery_sums_its_priority_lists_and_counts_its_unacked() -> None:
    source = CeleryQueue(name="mail", priority_steps=(0, 3, 6, 9))
    assert source.keys() == ["mail", "mail\x06\x163", "mail\x06\x166", "mail\x06\x169", "unacked"]
    reading = source.parse([[2, 1, 0, 4, 3]], at=1.0)
    assert (reading.lag, reading.pending, reading.queue_wait_seconds) == (7, 3, None)
    prefixed = CeleryQueue(name="mail", key_prefix="app:", priority_steps=(1, 5))
    assert prefixed.keys() == ["app:mail\x06\x161", "app:mail\x06\x165", "app:unacked"]


def test_a_list_counts_its_length_and_its_list_in_progress() -> None:
    assert ListQueue(key="jobs").parse([5], at=1.0).backlog == 5
    busy = ListQueue(key="jobs", in_progress_key="jobs:busy")
    assert busy.count == 2
    assert (busy.parse([5, 2], at=1.0).lag, busy.parse([5, 2], at=1.0).pending) == (5, 2)


def test_error_answers_are_missing_not_zero() -> None:
    wrong = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    for reading in (
        BullMQQueue(name="q").parse([wrong], at=1.0),
        BullMQQueue(name="q").parse([[*NOW, 1, 2]], at=1.0),
        RQQueue().parse([wrong], at=1.0),
        CeleryQueue().parse([[1, 2]], at=1.0),
        ListQueue(key="jobs").parse([wrong], at=1.0),
    ):
        assert reading.backlog is None and reading.error
        assert reading.sample().backlog is None


def test_backlog_rises_count_arrivals_for_queues_without_a_counter() -> None:
    rises = BacklogRises()
    ref = QueueRef("ns", "s", ListQueue(key="jobs"))
    totals = []
    for backlog in (3, 5, 2, 2, 0, 4):
        readings = {ref: QueueReading(at=1.0, backlog=backlog, lag=backlog, pending=0)}
        rises.fill(readings)
        totals.append((readings[ref].arrivals_total, readings[ref].completed_total))
    assert totals == [(3, 0), (5, 0), (5, 3), (5, 3), (5, 5), (9, 5)]
    failed = {ref: QueueReading(at=1.0, error="down")}
    rises.fill(failed)
    assert failed[ref].arrivals_total is None, "a failed reading stays missing"
    rises.fill({})
    fresh = {ref: QueueReading(at=1.0, backlog=1, lag=1, pending=0)}
    rises.fill(fresh)
    assert fresh[ref].arrivals_total == 1, "a queue not read for a tick starts again"


def test_queues_with_a_counter_keep_it() -> None:
    ref = QueueRef("ns", "s", BullMQQueue(name="q"))
    readings = {ref: QueueReading(at=1.0, backlog=4, arrivals_total=40, completed_total=36)}
    BacklogRises().fill(readings)
    assert (readings[ref].arrivals_total, readings[ref].arrivals_counted) == (40, True)
