"""A worker killed with SIGKILL mid-job: another worker reclaims its jobs, each done once."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def test_jobs_of_a_killed_worker_are_reclaimed_and_done_exactly_once(
    redis_backend, workloads, wait_for
):
    # The first worker sleeps 30 s in every job, so it is certainly mid-job when killed.
    doomed, _ = workloads.worker(**{contract.ENV_JOB_IO_MS: 30_000})
    ids = workloads.enqueue(4)
    wait_for(lambda: workloads.pending() == 4, what="the doomed worker holding 4 jobs", timeout=15)

    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.popen.wait(timeout=10)
    assert workloads.rows(ids) == {}

    _, metrics_port = workloads.worker()
    wait_for(lambda: len(workloads.rows(ids)) == 4, what="the 4 jobs done", timeout=30)
    wait_for(lambda: workloads.pending() == 0, what="every entry acknowledged", timeout=10)

    rows = workloads.rows(ids)
    assert {row["state"] for row in rows.values()} == {"done"}
    assert {row["redeliveries"] for row in rows.values()} == {0}
    # The killed delivery counts as one failed attempt.
    assert {row["attempts"] for row in rows.values()} == {1}
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert f"{contract.METRIC_WORKER_RECLAIMED}{{" in metrics
    reclaimed = [
        line for line in metrics.splitlines() if line.startswith(contract.METRIC_WORKER_RECLAIMED)
    ]
    assert float(reclaimed[0].rsplit(" ", 1)[1]) == 4.0
