"""At the backlog bound the API refuses new jobs with 503 before writing them; none is lost.

No worker runs, so the backlog only grows: the first ``BOUND`` jobs are
accepted, every later one gets 503 with Retry-After and is counted, and the
stream holds exactly the accepted ones. A worker then drains them all into
PostgreSQL, and the API accepts jobs again.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]
BOUND = 5
OFFERED = 9


def test_jobs_past_the_bound_get_503_and_the_accepted_ones_are_all_done(
    redis_backend, workloads, wait_for, refusals
):
    _, url = workloads.api(**{contract.ENV_QUEUE_MAX_BACKLOG: BOUND})
    accepted: list[uuid.UUID] = []
    refused = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(OFFERED):
            reply = client.post("/v1/jobs", json={"task": "bounded", "payload": {"i": i}})
            if reply.status_code == 202:
                accepted.append(uuid.UUID(reply.json()["id"]))
            else:
                refused.append(reply)
        metrics = client.get("/metrics").text
    assert len(accepted) == BOUND
    assert len(refused) == OFFERED - BOUND
    for reply in refused:
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "5"
        assert f"the bound is {BOUND}" in reply.json()["detail"]
    assert refusals(metrics, "queue_full") == OFFERED - BOUND
    assert refusals(metrics, "unavailable") == 0
    assert workloads.redis().xlen(workloads.stream) == BOUND

    workloads.worker()
    wait_for(lambda: len(workloads.rows(accepted)) == BOUND, what="every accepted job", timeout=30)
    assert {row["state"] for row in workloads.rows(accepted).values()} == {"done"}
    # Drained: the backlog is under the bound again, so jobs are accepted again.
    reply = httpx.post(f"{url}/v1/jobs", json={"task": "bounded", "payload": {}}, timeout=10)
    assert reply.status_code == 202
