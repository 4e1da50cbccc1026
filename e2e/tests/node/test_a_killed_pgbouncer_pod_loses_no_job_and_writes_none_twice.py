"""Every PgBouncer pod of the demo killed (grace period 0) under load: no job is lost, none
is written twice, and the API's reads answer 200, 404 or 503 (counted), never 500 and never
past the client's 5 s timeout (the API bounds a read of the primary: ``db.PRIMARY_READ_SECONDS``).

The jobs go in through the API (Redis only) while the workers write them to
PostgreSQL through PgBouncer; the pods are force-deleted 2 s into the load, so
the kubelet kills their containers and the Deployment makes new ones. Reads of
a job go through PgBouncer too, and are sampled every 0.1 s meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from retention_operator import names

pytestmark = pytest.mark.node
NAMESPACE = "demo"
JOBS = 150
READ_SECONDS = 30.0


def _wait_taking_jobs(url: str, *, task: str, seconds: float = 30.0) -> float:
    """POST one job until the API accepts it; the seconds that took.

    After the volumes test applies the stack again, its new API once answered
    503 for 4 s after the stack was Ready (its first enqueues failed with
    RedisClusterException), longer than the load's client retries. That is the
    API's first seconds, not the PgBouncer kill this test measures, and it is
    recorded as an open defect; the kill is measured from an API that takes jobs.
    """
    began = time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        while True:
            reply = client.post(jobload.JOBS_PATH, json={"task": task, "payload": {}})
            if reply.status_code != 503:
                reply.raise_for_status()
                return time.monotonic() - began
            assert time.monotonic() - began < seconds, f"the API answered 503 for {seconds} s"
            time.sleep(0.5)


def test_killed_pgbouncer_pods_lose_no_job_and_write_none_twice(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp = current.cp
    task = f"bouncer-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    first = _wait_taking_jobs(url, task=f"{task}-first")
    print(f"\nthe API took a job {first:.1f} s after the test began")
    reads: Counter[int] = Counter()
    failures: Counter[str] = Counter()  # The client's exceptions, by type.
    slowest = [0.0]
    stop = threading.Event()

    def read_loop() -> None:
        job = current.job_id  # The demo's own job: a row that exists.
        deadline = time.monotonic() + READ_SECONDS
        with httpx.Client(base_url=url, timeout=5) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                began = time.monotonic()
                try:
                    reads[client.get(f"/v1/jobs/{job}").status_code] += 1
                except httpx.HTTPError as exc:
                    reads[0] += 1
                    failures[type(exc).__name__] += 1
                slowest[0] = max(slowest[0], time.monotonic() - began)
                time.sleep(0.1)

    posted: list[jobload.Posted] = []
    poster = threading.Thread(
        target=lambda: posted.append(asyncio.run(jobload.post_jobs(url, JOBS, task=task))),
        daemon=True,
    )
    reader = threading.Thread(target=read_loop, daemon=True)
    selector = f"{names.LABEL_STACK}=demo,{names.LABEL_COMPONENT}={names.COMPONENT_PGBOUNCER}"
    victims = cp.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name").split()
    assert victims, "no PgBouncer pod to kill"
    poster.start()
    reader.start()
    try:
        time.sleep(2)
        killed = time.monotonic()
        cp.kubectl(
            "delete", "-n", NAMESPACE, *victims, "--grace-period=0", "--force", "--wait=false"
        )
        poster.join(120)
        rows = jobload.wait_rows(current.postgres, task, JOBS, timeout=180)
        converged = time.monotonic() - killed
    finally:
        stop.set()
        reader.join(10)
    assert posted, "the jobs were not all posted"
    assert rows == (JOBS, JOBS), f"{JOBS} jobs in, {rows[0]} rows ({rows[1]} distinct) out"
    errors = {code: n for code, n in reads.items() if code not in (200, 404)}
    assert set(errors) <= {503}, (
        f"reads answered otherwise than 200, 404 or 503: {dict(reads)}; "
        f"client errors {dict(failures)}; slowest read {slowest[0]:.1f} s"
    )
    print(
        f"\n{len(victims)} PgBouncer pod(s) killed under {JOBS} jobs: {rows[1]} rows, one each, "
        f"{converged:.1f} s after the kill; posts retried on 503: {posted[0].retried}; reads "
        f"{dict(reads)} (errors: {sum(errors.values())} of {sum(reads.values())}), slowest read "
        f"{slowest[0]:.1f} s; lost: nothing"
    )
