"""An Idempotency-Key's record hashes to its stream's slot; a retry is told from a new request.

The admit script touches the stream and the record in one call, which a
Redis Cluster allows only within one slot; the fingerprint ignores the
payload's key order, so a client that re-serialises its retry is not refused.
"""

from __future__ import annotations

from redis.crc import key_slot

import retention_contract as contract
from retention_workloads import queue
from retention_workloads.jobs import JobRequest, request_fingerprint


def test_the_record_is_in_the_stream_slot_and_of_bounded_length():
    stream = contract.default_stream("shop", "orders")
    record = queue.idempotency_key(stream, "k" * 255)
    assert key_slot(record.encode()) == key_slot(stream.encode())
    assert len(record) == len(stream) + len(":idem:") + 64


def test_a_retry_matches_and_another_request_does_not():
    first = JobRequest(task="t", payload={"a": 1, "b": [1, 2]})
    reordered = JobRequest.model_validate_json('{"payload": {"b": [1, 2], "a": 1}, "task": "t"}')
    other = JobRequest(task="t", payload={"a": 2, "b": [1, 2]})
    assert request_fingerprint(first) == request_fingerprint(reordered)
    assert request_fingerprint(first) != request_fingerprint(other)
