"""A PgBouncer that answers nothing (frozen: no FIN, no RST, as a pod killed at once looks to
its clients) makes a read of a job answer 503 within the API's bound, not hang past a
client's timeout; it answers again once PgBouncer does.

The pooled connection the first read leaves open is what a read then waits on
(asyncpg's command timeout, 15 s), and a new connection waits for PgBouncer's
startup reply (the connect timeout, 5 s).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from retention_workloads import db

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]
# What the answer may take beyond the primary's bound: the API's own work, on a loaded machine.
SLACK_SECONDS = 1.5
READS = 3


def test_reads_answer_503_within_the_bound_while_pgbouncer_hangs(
    standalone_backend, workloads, pgbouncer, wait_for
):
    _, url = workloads.api()
    path = f"/v1/jobs/{uuid.uuid4()}"
    with httpx.Client(base_url=url, timeout=30) as client:
        wait_for(lambda: client.get(path).status_code == 404, what="a read", timeout=20)
        answers: list[tuple[int, float]] = []
        pgbouncer.freeze()
        try:
            for _ in range(READS):
                began = time.monotonic()
                code = client.get(path).status_code
                answers.append((code, time.monotonic() - began))
        finally:
            pgbouncer.thaw()
        wait_for(lambda: client.get(path).status_code == 404, what="reads again", timeout=30)
    bound = db.PRIMARY_READ_SECONDS + SLACK_SECONDS
    print(
        f"\nreads while PgBouncer hung: {[(c, round(s, 2)) for c, s in answers]} (bound {bound} s)"
    )
    assert [code for code, _ in answers] == [503] * READS
    assert max(seconds for _, seconds in answers) <= bound
