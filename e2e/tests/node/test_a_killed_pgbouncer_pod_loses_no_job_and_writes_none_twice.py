"""Every PgBouncer pod of the demo killed (grace period 0) under load: no job is lost, none
is written twice, and the API's reads answer 200, 404 or 503 (counted), never 500 and never
past the client's 5 s timeout (the API bounds a read of the primary: ``db.PRIMARY_READ_SECONDS``).

The jobs go in through the API (Redis only) while the workers write them to
PostgreSQL through PgBouncer; the pods are force-deleted 2 s into the load, so
the kubelet kills their containers and the Deployment makes new ones. Reads of
a job go through PgBouncer too, and are sampled every 0.1 s meanwhile.
"""

from __future__ import annotations

import time
import uuid

import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from retention_operator import names

pytestmark = pytest.mark.node
NAMESPACE = "demo"
JOBS = 150
READ_SECONDS = 30.0


def test_killed_pgbouncer_pods_lose_no_job_and_write_none_twice(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp = current.cp
    task = f"bouncer-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    first = jobload.wait_taking_jobs(url, task=f"{task}-first")
    print(f"\nthe API took a job {first:.1f} s after the test began")
    # The demo's own job: a row that exists.
    reads = jobload.Reads(url, current.job_id, seconds=READ_SECONDS)
    poster = jobload.BackgroundPosts(url, JOBS, task=task)
    selector = f"{names.LABEL_STACK}=demo,{names.LABEL_COMPONENT}={names.COMPONENT_PGBOUNCER}"
    victims = cp.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name").split()
    assert victims, "no PgBouncer pod to kill"
    poster.start()
    reads.start()
    try:
        time.sleep(2)
        killed = time.monotonic()
        cp.kubectl(
            "delete", "-n", NAMESPACE, *victims, "--grace-period=0", "--force", "--wait=false"
        )
        posted = poster.join(120)
        rows = jobload.wait_rows(current.postgres, task, JOBS, timeout=180)
        converged = time.monotonic() - killed
    finally:
        reads.stop()
    assert rows == (JOBS, JOBS), f"{JOBS} jobs in, {rows[0]} rows ({rows[1]} distinct) out"
    errors = reads.errors()
    assert set(errors) <= {503}, (
        f"reads answered otherwise than 200, 404 or 503: {dict(reads.codes)}; "
        f"client errors {dict(reads.failures)}; slowest read {reads.slowest:.1f} s"
    )
    print(
        f"\n{len(victims)} PgBouncer pod(s) killed under {JOBS} jobs: {rows[1]} rows, one each, "
        f"{converged:.1f} s after the kill; posts retried on 503: {posted.retried}; reads "
        f"{dict(reads.codes)} (errors: {sum(errors.values())} of {reads.codes.total()}), "
        f"slowest read {reads.slowest:.1f} s; lost: nothing"
    )
