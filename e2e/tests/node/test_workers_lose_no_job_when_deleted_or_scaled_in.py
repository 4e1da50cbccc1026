"""Workers stopped while they hold jobs lose none: a deleted pod, and a scale-in under load.

The kubelet sends SIGTERM and honours the grace period; the worker stops
reading, finishes what it holds (or leaves it pending for another worker to
claim) and exits. N jobs in, N rows out, each once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from retention_contract import ENV_JOB_IO_MS
from retention_operator import names

pytestmark = pytest.mark.node
NAMESPACE = STACK = "demo"
JOBS = 120
# Each job waits this long, so that workers hold jobs when they are stopped.
JOB_IO_MS = 1500


def _patch(demo_runs: DemoRuns, workers: dict[str, Any]) -> None:
    patch = json.dumps({"spec": {"workers": workers}})
    demo_runs.current.cp.kubectl(
        "patch", "rstack", STACK, "-n", NAMESPACE, "--type=merge", "-p", patch
    )


def _worker_pods(demo_runs: DemoRuns) -> list[str]:
    selector = f"{names.LABEL_STACK}={STACK},{names.LABEL_COMPONENT}={names.COMPONENT_WORKERS}"
    out = demo_runs.current.cp.kubectl(
        "get", "pods", "-n", NAMESPACE, "-l", selector,
        "--field-selector=status.phase=Running", "-o", "name",
    )  # fmt: skip
    return out.split()


def _wait(predicate: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


@pytest.fixture
def slow_workers(demo_runs: DemoRuns) -> Any:
    """Two to three workers whose jobs take 1.5 s each; the stack's workers are restored after."""
    out = demo_runs.current.cp.kubectl("get", "rstack", STACK, "-n", NAMESPACE, "-o", "json")
    before = json.loads(out)["spec"]["workers"]
    changed = {
        "minReplicas": 2,
        "maxReplicas": 3,
        "concurrency": 4,
        "env": [{"name": ENV_JOB_IO_MS, "value": str(JOB_IO_MS)}],
    }
    _patch(demo_runs, changed)
    _wait(lambda: len(_worker_pods(demo_runs)) >= 2, timeout=120, what="two slow workers")
    yield
    _patch(demo_runs, {key: before.get(key) for key in changed})


@pytest.mark.usefixtures("slow_workers")
def test_a_deleted_worker_and_a_scale_in_lose_no_job(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp = current.cp
    task = f"drain-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    ids = asyncio.run(jobload.post_jobs(url, JOBS, task=task)).ids
    time.sleep(3)
    victim = _worker_pods(demo_runs)[0]
    cp.kubectl("delete", "-n", NAMESPACE, victim, "--wait=false")
    time.sleep(3)
    # Scale in under load: the autoscaler must come down to the new bound.
    _patch(demo_runs, {"minReplicas": 1, "maxReplicas": 1})
    total, distinct = jobload.wait_rows(current.postgres, task, JOBS, timeout=240)
    assert (total, distinct) == (JOBS, JOBS), f"{len(ids)} jobs in, {total} rows out"
