"""Entries that are not jobs, and jobs that keep killing workers, go to the dead-letter stream.

The dead-letter entry carries the reason; the worker carries on with the next job.
"""

from __future__ import annotations

import uuid

import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def test_a_malformed_entry_is_deadlettered_and_the_worker_carries_on(
    redis_backend, workloads, wait_for
):
    client = workloads.redis()
    client.xgroup_create(workloads.stream, contract.DEFAULT_QUEUE_GROUP, id="0", mkstream=True)
    client.xadd(workloads.stream, {"id": "not-a-uuid", "task": "x", "payload": "{}"})
    client.xadd(
        workloads.stream,
        {
            "id": str(uuid.uuid4()),
            "task": "x",
            "payload": "[1]",
            "enqueued_ms": "0",
            "attempts": "0",
        },
    )
    good = workloads.enqueue(1)
    workloads.worker()

    wait_for(lambda: len(workloads.rows(good)) == 1, what="the good job done", timeout=30)
    wait_for(lambda: client.xlen(workloads.deadletter) == 2, what="2 dead letters", timeout=10)
    reasons = sorted(fields["reason"] for _, fields in client.xrange(workloads.deadletter))
    assert reasons == ["field 'id' is not a UUID", "field 'payload' is not a JSON object"]
    assert workloads.pending() == 0


def test_a_job_delivered_too_often_is_deadlettered_with_a_dead_row(
    redis_backend, workloads, wait_for
):
    # Stand in for workers that died on this job: deliver it max_attempts times by hand.
    max_attempts = 3
    client = workloads.redis()
    group = contract.DEFAULT_QUEUE_GROUP
    client.xgroup_create(workloads.stream, group, id="0", mkstream=True)
    (poison,) = workloads.enqueue(1)
    client.xreadgroup(group, "crashed-0", {workloads.stream: ">"})
    for n in range(1, max_attempts):
        client.xautoclaim(workloads.stream, group, f"crashed-{n}", 0)
    # The worker's own claim is the (max_attempts + 1)-th delivery.
    workloads.worker(**{contract.ENV_MAX_ATTEMPTS: max_attempts, contract.ENV_CLAIM_IDLE_MS: 200})

    wait_for(lambda: client.xlen(workloads.deadletter) == 1, what="the dead letter", timeout=30)
    ((_, fields),) = client.xrange(workloads.deadletter)
    assert fields["id"] == str(poison)
    assert fields["reason"].startswith(f"delivered {max_attempts + 1} times without finishing")
    assert fields["failed_attempts"] == str(max_attempts)
    wait_for(lambda: workloads.pending() == 0, what="the entry acknowledged", timeout=10)
    row = workloads.rows([poison])[poison]
    assert row["state"] == "dead" and row["error"] == fields["reason"]
