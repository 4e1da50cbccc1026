"""A POST retried with the same Idempotency-Key returns the first job; a reused key is refused.

The key is remembered beside the stream, in the same hash slot, by the
script that appends the job, so two requests with one key can never make
two jobs, on a standalone Redis or a Redis Cluster.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_the_same_key_twice_gives_one_job(redis_backend, workloads, wait_for):
    _, url = workloads.api()
    key = str(uuid.uuid4())
    body = {"task": "once", "payload": {"order": 17}}
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        again = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        other = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key + "-b"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert other.json()["id"] != first.json()["id"]
    assert workloads.redis().xlen(workloads.stream) == 2

    workloads.worker()
    ids = [uuid.UUID(first.json()["id"]), uuid.UUID(other.json()["id"])]
    wait_for(lambda: len(workloads.rows(ids)) == 2, what="both jobs done", timeout=30)
    assert workloads.rows(ids)[ids[0]]["redeliveries"] == 0


def test_a_key_reused_for_another_body_or_malformed_is_refused_by_name(
    standalone_backend, workloads
):
    _, url = workloads.api()
    key = str(uuid.uuid4())
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.post("/v1/jobs", json={"task": "a"}, headers={"Idempotency-Key": key})
        reused = client.post("/v1/jobs", json={"task": "b"}, headers={"Idempotency-Key": key})
        bad = client.post("/v1/jobs", json={"task": "a"}, headers={"Idempotency-Key": "x" * 300})
    assert first.status_code == 202
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert workloads.redis().xlen(workloads.stream) == 1
