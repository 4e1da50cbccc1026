"""Jobs POSTed to the API's Service become rows in PostgreSQL, one each, through PgBouncer's pods.

The host reaches the Service's ClusterIP through the real node's veth, where
kube-proxy sends it to an API pod; the job goes through the managed Redis
Cluster to a worker pod, which writes it through the PgBouncer pods to the
PostgreSQL on the host.

Named to run on the demo as it came up, before the test that deletes and
recreates the stack. Once, after that recreation, the one worker pod started
then consumed nothing for three minutes, until a rollout replaced it: its
cluster client had first met Redis while the recreated pods still listed
their old addresses, and kept only those (see the architecture's "A cluster
client keeps the Service as a way back in").
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns

pytestmark = pytest.mark.node
JOBS = 200


def test_each_job_posted_becomes_exactly_one_row(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    url = demo.service_url(current.cp, "demo-api")
    task = f"rows-{uuid.uuid4().hex[:8]}"
    posted = asyncio.run(jobload.post_jobs(url, JOBS, task=task))
    print(f"{JOBS} jobs accepted, {posted.retried} 503s retried")
    assert len(set(posted.ids)) == JOBS
    assert jobload.wait_rows(current.postgres, task, JOBS, timeout=120) == (JOBS, JOBS)
