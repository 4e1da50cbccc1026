"""Signal parsing: what Redis and Prometheus answer becomes readings; failures become None."""

from __future__ import annotations

from redis.exceptions import ResponseError

from retention_operator.autoscaling.promql import latency_query, parse_latency
from retention_operator.autoscaling.queues import StreamQueue, parse_oldest_waiting, parse_queue

STREAM = {"length": 7, "entries-added": 12}


def test_backlog_is_lag_plus_pending_and_completed_is_read_minus_pending() -> None:
    groups = [{"name": "workers", "lag": 5, "pending": 2, "entries-read": 7}]
    reading = parse_queue(STREAM, groups, group="workers", at=10.0)
    assert (reading.backlog, reading.lag, reading.pending) == (7, 5, 2)
    assert (reading.arrivals_total, reading.completed_total) == (12, 5)
    assert reading.error is None


def test_a_stream_that_does_not_exist_is_an_empty_queue() -> None:
    missing = ResponseError("no such key")
    reading = parse_queue(missing, missing, group="workers", at=1.0)
    assert reading.backlog == 0
    assert reading.error is None


def test_a_stream_without_the_group_counts_every_entry_as_waiting() -> None:
    reading = parse_queue(
        STREAM, [{"name": "other", "lag": 0, "pending": 0}], group="workers", at=1.0
    )
    assert reading.backlog == 7


def test_errors_and_unknown_lag_are_missing_not_zero() -> None:
    for stream, groups in (
        (ResponseError("WRONGTYPE"), []),
        (STREAM, ResponseError("NOAUTH")),
        (STREAM, [{"name": "workers", "lag": None, "pending": 0, "entries-read": None}]),
    ):
        reading = parse_queue(stream, groups, group="workers", at=1.0)
        assert reading.backlog is None
        assert reading.sample().backlog is None
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
    answer = ["1800000008000-3", "1800000010", "500000"]
    assert parse_oldest_waiting(answer) == 2.5
    assert parse_oldest_waiting([None, "1800000010", "0"]) == 0.0


def test_an_unreadable_oldest_entry_is_missing_not_zero() -> None:
    for answer in (
        ResponseError("WRONGTYPE"),
        ["1-1", "1800000010", "0"],  # an ID the application chose: not a time
        ["x-1", "1800000010", "0"],
        ["1800000008000-0", None, "0"],
        ["1800000008000-0"],
        "1800000008000-0",
    ):
        assert parse_oldest_waiting(answer) is None, answer


def test_each_queue_parses_its_own_answers_in_order() -> None:
    source = StreamQueue(stream="{ns/s}:jobs", group="workers")
    groups = [{"name": "workers", "lag": 5, "pending": 2, "entries-read": 7}]
    answers = (STREAM, groups, ["1800000008000-0", "1800000010", "0"])
    assert len(answers) == source.count
    reading = source.parse(answers, at=1.0)
    assert (reading.backlog, reading.queue_wait_seconds) == (7, 2.0)
    failed = source.parse((ResponseError("NOAUTH"),) * 3, at=1.0)
    assert failed.error is not None and failed.queue_wait_seconds is None
