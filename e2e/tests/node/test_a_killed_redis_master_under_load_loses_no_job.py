"""The demo's Redis master holding the job stream killed under load (grace period 0): no
job the API accepted is lost, none is written twice, and the stack is Ready again.

The jobs go in through the API, 20 a second for 15 s, while the workers take them
from the stream and write them to PostgreSQL. 3 s into the load the pod of the
master that serves the stream's hash slot is force-deleted, so the kubelet kills
its container and the StatefulSet makes the pod again on its volume; whether Redis fails over to the
replica meanwhile or the master comes back first, every job the API answered with
an id must become exactly one row. A POST the API cannot enqueue is answered 503
with Retry-After and retried by the client (counted); any other refusal fails.
"""

from __future__ import annotations

import time
import uuid

import pytest
from redis.crc import key_slot

import retention_contract as contract
from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from retention_operator.builders import naming

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]
NAMESPACE = STACK = "demo"
JOBS = 300
# Posted over 15 s, so that jobs keep coming in while the master is gone and back.
PER_SECOND = 20.0
KILL_AFTER_SECONDS = 3.0


def _master_of(demo_runs: DemoRuns, slot: int) -> str:
    """The pod of the master serving ``slot``, from CLUSTER NODES asked in another pod.

    Each node announces its pod's host name (``<pod>.<headless service>...``) beside
    its address; the address a node gives for itself can be its pod's old one for a
    while after the pod was made again, the host name cannot.
    """
    cp = demo_runs.current.cp
    nodes = demo.redis_cli(cp, f"{naming.redis(STACK)}-1", "CLUSTER", "NODES")
    for line in nodes.splitlines():
        fields = line.split()
        if len(fields) < 9 or "master" not in fields[2].split(","):
            continue
        for part in fields[8:]:
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                _, _, host = fields[1].partition(",")
                return host.split(".")[0]
    raise AssertionError(f"no master serves slot {slot}:\n{nodes}")


def test_a_killed_redis_master_under_load_loses_no_job(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp = current.cp
    assert demo.wait_ready(cp, timeout=300), "the demo is not Ready before the kill"
    task = f"redis-kill-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    jobload.wait_taking_jobs(url, task=f"{task}-first")
    slot = key_slot(contract.default_stream(NAMESPACE, STACK).encode())
    victim = _master_of(demo_runs, slot)
    poster = jobload.BackgroundPosts(url, JOBS, task=task, per_second=PER_SECOND)
    poster.start()
    time.sleep(KILL_AFTER_SECONDS)
    killed = time.monotonic()
    cp.kubectl(
        "delete", "pod", victim, "-n", NAMESPACE, "--grace-period=0", "--force", "--wait=false"
    )
    posted = poster.join(240)
    rows = jobload.wait_rows(current.postgres, task, JOBS, timeout=240)
    converged = time.monotonic() - killed
    assert rows == (JOBS, JOBS), f"{JOBS} jobs accepted, {rows[0]} rows ({rows[1]} distinct) out"
    assert demo.wait_ready(cp, timeout=300), "the stack is not Ready again after the kill"
    now_master = _master_of(demo_runs, slot)
    print(
        f"\nRedis master {victim} (slot {slot}) killed {KILL_AFTER_SECONDS:.0f} s into {JOBS} "
        f"jobs at {PER_SECOND:.0f}/s: {rows[1]} rows, one "
        f"each, {converged:.1f} s after the kill; the slot's master now {now_master} "
        f"({'the same pod, back' if now_master == victim else 'its replica, failed over'}); posts "
        f"retried on 503: {posted.retried}; Ready {time.monotonic() - killed:.1f} s after "
        f"the kill; lost: nothing"
    )
