"""A job posted to the API is run by a worker, lands in PostgreSQL once, and is acknowledged.

Runs on a standalone Redis and on a Redis Cluster, with PgBouncer in
transaction mode and asyncpg's statement cache off (the default).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def test_posted_jobs_are_done_once_and_acknowledged(redis_backend, workloads, wait_for):
    _, url = workloads.api()
    workloads.worker()
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/readyz").json() == {"redis": "ok", "database": "ok"}
        accepted = [
            client.post("/v1/jobs", json={"task": "resize", "payload": {"n": n}}) for n in range(20)
        ]
        assert {r.status_code for r in accepted} == {202}
        ids = [uuid.UUID(r.json()["id"]) for r in accepted]
        assert accepted[0].headers["location"] == f"/v1/jobs/{ids[0]}"

        wait_for(lambda: len(workloads.rows(ids)) == len(ids), what="20 rows", timeout=30)
        wait_for(lambda: workloads.pending() == 0, what="every entry acknowledged", timeout=10)

        rows = workloads.rows(ids)
        assert {row["state"] for row in rows.values()} == {"done"}
        assert {row["redeliveries"] for row in rows.values()} == {0}
        # Each row dates its own queue wait: enqueued, then started, then finished.
        assert all(
            row["enqueued_at"] <= row["started_at"] <= row["finished_at"] for row in rows.values()
        )
        state = client.get(f"/v1/jobs/{ids[0]}").json()
        assert state["state"] == "done" and state["task"] == "resize"
        assert state["result"]["digest"]
        assert client.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404
        assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]

        metrics = client.get("/metrics").text
    assert contract.METRIC_API_REQUEST_DURATION in metrics
    assert f'{contract.LABEL_STACK}="{workloads.stack}"' in metrics
    assert 'route="/v1/jobs/{job_id}"' in metrics
