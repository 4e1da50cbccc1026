"""The demo's PostgreSQL restarted under load: no job is lost, none is written twice, the
API's reads answer 200, 404 or 503 (counted), never 500 and never past the client's 5 s
timeout, and the stack is Ready again without a hand.

The jobs go in through the API (Redis only) while the workers write them to
PostgreSQL through PgBouncer. 2 s into the load the server is stopped (a fast
shutdown: every session PgBouncer holds is ended) and started again
``DOWN_SECONDS`` later on the same port and data. A worker's write that fails on
the outage is not a failed attempt of the job (``RETENTION_MAX_ATTEMPTS``): the
job stays pending and is written once the database is back.
"""

from __future__ import annotations

import time
import uuid

import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns

pytestmark = pytest.mark.node
JOBS = 150
DOWN_SECONDS = 5.0
READ_SECONDS = 40.0


def test_a_restarted_postgres_loses_no_job_and_writes_none_twice(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp, postgres = current.cp, current.postgres
    task = f"restart-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    first = jobload.wait_taking_jobs(url, task=f"{task}-first")
    print(f"\nthe API took a job {first:.1f} s after the test began")
    reads = jobload.Reads(url, current.job_id, seconds=READ_SECONDS)
    poster = jobload.BackgroundPosts(url, JOBS, task=task)
    poster.start()
    reads.start()
    try:
        time.sleep(2)
        stopped = time.monotonic()
        postgres.stop()
        time.sleep(DOWN_SECONDS)
        postgres.start()
        back = time.monotonic()
        posted = poster.join(120)
        rows = jobload.wait_rows(postgres, task, JOBS, timeout=180)
        converged = time.monotonic() - back
    finally:
        reads.stop()
        postgres.start()  # A no-op when it runs: never leave the demo without its database.
    assert rows == (JOBS, JOBS), f"{JOBS} jobs in, {rows[0]} rows ({rows[1]} distinct) out"
    errors = reads.errors()
    assert set(errors) <= {503}, (
        f"reads answered otherwise than 200, 404 or 503: {dict(reads.codes)}; "
        f"client errors {dict(reads.failures)}; slowest read {reads.slowest:.1f} s"
    )
    ready_began = time.monotonic()
    assert demo.wait_ready(cp, timeout=120), "the stack is not Ready again after the restart"
    print(
        f"\nPostgreSQL down {back - stopped:.1f} s under {JOBS} jobs: {rows[1]} rows, one each, "
        f"all in {converged:.1f} s after it was back; the stack Ready "
        f"{time.monotonic() - ready_began:.1f} s after that; posts retried on 503: "
        f"{posted.retried}; reads {dict(reads.codes)} (errors: {sum(errors.values())} of "
        f"{reads.codes.total()}), slowest read {reads.slowest:.1f} s; lost: nothing"
    )
