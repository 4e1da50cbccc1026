"""Signal parsing: what Redis and Prometheus answer becomes readings; failures become None."""

from __future__ import annotations

from redis.exceptions import ResponseError

from retention_operator.autoscaling.promql import latency_query, parse_latency
from retention_operator.autoscaling.queues import (
    BULLMQ_SCRIPT,
    CELERY_SCRIPT,
    RQ_SCRIPT,
    STREAM_SCRIPT,
    QueueReading,
    StreamQueue,
)

NOW = ["1800000010", "500000"]  # TIME: 1_800_000_010.5 s
SOURCE = StreamQueue(stream="{ns/s}:jobs", group="workers")


def _stream(*rest: object) -> QueueReading:
    """The reading of the stream script's reply: TIME, then ``rest``."""
    return SOURCE.parse([[*NOW, *rest]], at=10.0)


def test_backlog_is_lag_plus_pending_and_completed_is_read_minus_pending() -> None:
    # With the group; length 7, entries-added 12, lag 5, pending 2, entries-read 7.
    reading = _stream(2, 7, 12, 5, 2, 7, None)
    assert (reading.backlog, reading.lag, reading.pending) == (7, 5, 2)
    assert (reading.arrivals_total, reading.completed_total) == (12, 5)
    assert reading.error is None


def test_a_stream_that_does_not_exist_is_an_empty_queue() -> None:
    reading = _stream(0)
    assert (reading.backlog, reading.arrivals_total, reading.queue_wait_seconds) == (0, 0, 0.0)
    assert reading.error is None


def test_a_stream_without_the_group_counts_every_entry_as_waiting() -> None:
    reading = _stream(1, 7, 12, None, 0, None, "1800000008000-0")
    assert (reading.backlog, reading.lag, reading.pending) == (7, 7, 0)
    assert (reading.arrivals_total, reading.completed_total) == (12, 0)
    assert reading.queue_wait_seconds == 2.5


def test_errors_and_unknown_lag_are_missing_not_zero() -> None:
    for reply in (
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ResponseError("NOAUTH"),
        [*NOW, 2, 7, 12, None, 0, None, None],  # XDEL: Redis cannot tell the lag
        [*NOW, 2, 7],
        [*NOW, 3, 7, 12, 5, 2, 7, None],
        "1800000010",
    ):
        reading = SOURCE.parse([reply], at=1.0)
        assert reading.backlog is None, reply
        assert reading.sample().backlog is None
        assert reading.queue_wait_seconds is None
        assert reading.error


def _series(ns: str, stack: str, signal: str, value: str) -> dict[str, object]:
    return {"metric": {"namespace": ns, "stack": stack, "signal": signal}, "value": [99.0, value]}


def test_latency_reads_p95_in_milliseconds_rate_and_data_time() -> None:
    result = [
        _series("a", "s", "p95", "0.25"),
        _series("a", "s", "rps", "40"),
        _series("a", "s", "rps_recent", "55"),
        _series("a", "s", "at", "90.5"),
        _series("b", "idle", "p95", "NaN"),
        _series("b", "idle", "rps", "0"),
        _series("c", "odd", "p95", "NaN"),
        _series("c", "odd", "rps", "3"),
    ]
    readings = parse_latency(result, now=100.0)
    assert readings[("a", "s")].p95_ms == 250.0
    assert readings[("a", "s")].rps == 40.0
    assert readings[("a", "s")].sample().rps_recent == 55.0
    assert readings[("b", "idle")].rps_recent is None
    assert readings[("a", "s")].at == 90.5
    assert readings[("b", "idle")].p95_ms == 0.0
    assert readings[("c", "odd")].p95_ms is None
    assert readings[("c", "odd")].at == 100.0


def test_the_query_groups_every_stack_by_namespace_and_stack() -> None:
    query = latency_query()
    selector = 'retention_api_request_duration_seconds_count{namespace!="", stack!=""}'
    assert query.count(" or ") == 3
    assert f"irate({selector}[1m])" in query
    assert "histogram_quantile(0.95, sum by (namespace, stack, le)" in query
    rps = f"sum by (namespace, stack) (rate({selector}[1m]))"
    assert f'label_replace({rps}, "signal", "rps", "", "")' in query


def test_the_oldest_waiting_entry_is_dated_by_the_server_clock() -> None:
    # Server time 1_800_000_010.5 s; the oldest undelivered entry was added 2.5 s before.
    assert _stream(2, 7, 12, 5, 2, 7, "1800000008000-3").queue_wait_seconds == 2.5
    assert _stream(2, 7, 7, 0, 0, 7, None).queue_wait_seconds == 0.0


def test_an_unreadable_oldest_entry_is_missing_not_zero() -> None:
    for oldest in ("1-1", "x-1"):  # IDs the application chose: not a time
        reading = _stream(2, 7, 12, 5, 2, 7, oldest)
        assert reading.queue_wait_seconds is None, oldest
        assert reading.backlog == 7
    no_time = SOURCE.parse([[None, "0", 2, 7, 12, 5, 2, 7, "1800000008000-0"]], at=1.0)
    assert no_time.queue_wait_seconds is None and no_time.backlog == 7


def test_a_stream_is_read_with_one_script_and_every_script_is_read_only() -> None:
    assert SOURCE.count == 1
    for script in (STREAM_SCRIPT, BULLMQ_SCRIPT, RQ_SCRIPT, CELERY_SCRIPT):
        assert script.startswith("#!lua flags=no-writes\n"), script[:40]
