"""Stream entries: what the API writes the worker reads back; anything else is named."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from retention_workloads import queue, worker
from retention_workloads.jobs import (
    MAX_PAYLOAD_BYTES,
    JobRequest,
    MalformedJob,
    decode_entry,
    new_job_fields,
    retry_fields,
)
from retention_workloads.settings import SettingsError


def test_a_new_job_decodes_to_what_was_requested():
    job_id, fields = new_job_fields(JobRequest(task="resize", payload={"w": 3}), now_ms=1234)
    job = decode_entry("1-0", fields)
    assert (job.id, job.task, job.payload, job.enqueued_ms, job.attempts) == (
        job_id, "resize", {"w": 3}, 1234, 0,
    )  # fmt: skip
    assert decode_entry("2-0", retry_fields(job, attempts=2)).attempts == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({b"id": b"nope"}, "field 'id' is not a UUID"),
        ({b"task": b"Bad Task"}, "field 'task' is not a valid task name"),
        ({b"payload": b"{"}, "field 'payload' is not JSON"),
        ({b"payload": b"[]"}, "field 'payload' is not a JSON object"),
        ({b"attempts": b"-1"}, "field 'attempts' is not a non-negative integer"),
        ({b"enqueued_ms": b"\xff"}, "field 'enqueued_ms' is not UTF-8"),
    ],
)
def test_a_malformed_entry_is_refused_with_its_reason(change, reason):
    _, fields = new_job_fields(JobRequest(task="ok"))
    with pytest.raises(MalformedJob) as raised:
        decode_entry("1-0", {**fields, **change})
    assert str(raised.value) == reason


def test_a_missing_field_is_named():
    _, fields = new_job_fields(JobRequest(task="ok"))
    del fields[b"task"]
    with pytest.raises(MalformedJob, match="field 'task' is missing"):
        decode_entry("1-0", fields)


def test_the_api_model_bounds_the_payload_and_forbids_unknown_fields():
    with pytest.raises(ValidationError) as raised:
        JobRequest(task="ok", payload={"x": "y" * MAX_PAYLOAD_BYTES})
    assert raised.value.errors()[0]["loc"] == ("payload",)
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"task": "ok", "extra": 1})


def test_failed_attempts_count_unfinished_deliveries():
    _, fields = new_job_fields(JobRequest(task="ok"))
    job = decode_entry("1-0", retry_fields(decode_entry("1-0", fields), attempts=1))
    assert worker.failed_attempts(job, delivered=1) == 1
    assert worker.failed_attempts(job, delivered=3) == 3


def test_retry_delays_grow_and_are_capped():
    delays = [worker.retry_delay(n) for n in range(1, 10)]
    assert delays == sorted(delays) and delays[0] == 0.2 and delays[-1] == 5.0


def test_streams_in_different_cluster_slots_are_refused():
    queue.check_same_slot("{shop}:jobs", "{shop}:jobs:dead")
    with pytest.raises(SettingsError, match="hash tag"):
        queue.check_same_slot("shop:jobs", "shop:jobs:dead")


def test_job_ids_are_uuids():
    job_id, _ = new_job_fields(JobRequest(task="ok"))
    assert isinstance(job_id, uuid.UUID)
