"""PostgreSQL restarted under load: every accepted job is done once, reads fail only with 503.

The API keeps accepting jobs while the database is down (POST touches Redis
only); the workers' writes fail, count as no attempt, and go through once it
is back. The test prints what it measured: jobs accepted, jobs lost (none),
read errors during the outage, and the seconds from the restart until every
job's row is in.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import httpx
import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]
DOWN_S = 3.0


def test_no_job_is_lost_and_none_is_written_twice_across_a_postgresql_restart(
    standalone_backend, workloads, postgres, wait_for
):
    _, url = workloads.api()
    workloads.worker(**{contract.ENV_JOB_IO_MS: 20})
    workloads.worker(**{contract.ENV_JOB_IO_MS: 20})
    ids: list[uuid.UUID] = []
    posts: Counter[int] = Counter()
    reads: Counter[int] = Counter()
    stopped_at = started_at = 0.0
    with httpx.Client(base_url=url, timeout=10) as client:
        # Bounded load: at most 400 jobs or 30 s; PostgreSQL is down for DOWN_S from job 150.
        deadline = time.monotonic() + 30
        while len(ids) < 400 and time.monotonic() < deadline:
            response = client.post("/v1/jobs", json={"task": "load", "payload": {"n": len(ids)}})
            posts[response.status_code] += 1
            if response.status_code == 202:
                ids.append(uuid.UUID(response.json()["id"]))
            reads[client.get(f"/v1/jobs/{ids[-1 - min(len(ids) - 1, 20)]}").status_code] += 1
            if len(ids) == 150 and not stopped_at:
                postgres.stop()
                stopped_at = time.monotonic()
            if stopped_at and not started_at and time.monotonic() - stopped_at >= DOWN_S:
                postgres.start()
                started_at = time.monotonic()
        if not started_at:
            postgres.start()
            started_at = time.monotonic()
        assert stopped_at, "the load ended before the restart"

        wait_for(lambda: len(workloads.rows(ids)) == len(ids), what="every job done", timeout=60)
        converged_s = time.monotonic() - started_at
        wait_for(lambda: workloads.pending() == 0, what="every entry acknowledged", timeout=10)
        wait_for(lambda: client.get("/readyz").status_code == 200, what="the API ready", timeout=20)
    rows = workloads.rows(ids)
    print(
        f"\npostgresql restart: accepted={len(ids)} lost={len(ids) - len(rows)} "
        f"posts={dict(posts)} reads={dict(reads)} converged_s={converged_s:.1f}"
    )
    assert posts == {202: len(ids)}, "the API accepts jobs while only the database is down"
    assert {row["state"] for row in rows.values()} == {"done"}
    # One row per job (the id is the key); a write whose commit reply was lost is
    # retried and only counted in redeliveries, at most once per job held then.
    assert max(row["redeliveries"] for row in rows.values()) <= 1
    assert sum(row["redeliveries"] for row in rows.values()) <= 32
    # A database outage is not the job's fault: no failed attempt is counted for it.
    assert max(row["attempts"] for row in rows.values()) == 0
    assert set(reads) <= {200, 404, 503}, reads
