"""SIGTERM under load: the worker stops reading, finishes or hands back what it holds, exits 0.

No job is lost and none is done twice (``redeliveries`` stays 0 on every row).
"""

from __future__ import annotations

import signal
import time

import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]


def test_a_terminated_worker_finishes_its_jobs_and_none_is_lost(
    standalone_backend, workloads, wait_for
):
    cost = {contract.ENV_JOB_IO_MS: 100, contract.ENV_WORKER_CONCURRENCY: 8}
    leaving, _ = workloads.worker(**cost)
    workloads.worker(**cost)
    ids = workloads.enqueue(300)
    wait_for(lambda: len(workloads.rows(ids)) >= 60, what="the load under way", timeout=30)

    sent = time.monotonic()
    leaving.popen.send_signal(signal.SIGTERM)
    assert leaving.popen.wait(timeout=25) == 0
    # It held at most 8 jobs of 100 ms each: draining takes about one read block.
    assert time.monotonic() - sent < 5.0

    wait_for(lambda: len(workloads.rows(ids)) == 300, what="all 300 jobs done", timeout=60)
    wait_for(lambda: workloads.pending() == 0, what="every entry acknowledged", timeout=10)
    rows = workloads.rows(ids)
    assert {row["state"] for row in rows.values()} == {"done"}
    assert {row["redeliveries"] for row in rows.values()} == {0}
    assert workloads.redis().xlen(workloads.deadletter) == 0
    # The departed consumer left the group, since it held nothing.
    consumers = workloads.redis().xinfo_consumers(workloads.stream, contract.DEFAULT_QUEUE_GROUP)
    assert len(consumers) == 1


def test_jobs_that_cannot_finish_in_the_grace_period_are_handed_back(
    standalone_backend, workloads, wait_for
):
    slow, _ = workloads.worker(
        **{contract.ENV_JOB_IO_MS: 20_000, contract.ENV_SHUTDOWN_TIMEOUT_S: 0.5}
    )
    ids = workloads.enqueue(3)
    wait_for(lambda: workloads.pending() == 3, what="the slow worker holding 3 jobs", timeout=15)

    slow.popen.send_signal(signal.SIGTERM)
    assert slow.popen.wait(timeout=10) == 0
    # Handed back at once (re-enqueued and acknowledged), not left to the idle-time reclaim.
    assert workloads.pending() == 0
    assert workloads.redis().xlen(workloads.stream) >= 3

    workloads.worker()
    wait_for(lambda: len(workloads.rows(ids)) == 3, what="the 3 jobs done", timeout=30)
    rows = workloads.rows(ids)
    assert {row["redeliveries"] for row in rows.values()} == {0}
    # Handing back costs a job no attempt.
    assert {row["attempts"] for row in rows.values()} == {0}
