"""The kubelet stopped for 5 s and started again under load: every pod keeps running (same
containers, no restart), the stack stays Ready throughout, and every job becomes one row.

The kubelet's containers belong to containerd's shims, so a kubelet that goes
away takes none with it; on its return it must adopt them, not recreate them.
Jobs are posted through the API's Service while it is down (the Service
routes through kube-proxy, which stays).

A kubelet of Kubernetes 1.34 reports its running containers not ready until
its first probe after the restart; the stack stays Ready across that drop by
the operator's rule (``reconcile/readiness_hold.py``: pods that kept their
containers, for under 10 s), and the test counts the polls that saw it held.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import pytest

from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from harness.stacks import is_ready

pytestmark = [pytest.mark.node]
NAMESPACES = ("demo", "retention-system")
JOBS = 100
DOWN_SECONDS = 5.0


def _containers(demo_runs: DemoRuns) -> dict[str, Any]:
    """Pod uid, container ids and restart counts of every pod of the demo, by pod name.

    Pods being deleted are left out: they go at someone's request, not the kubelet's
    (a test before this one deletes the stack and applies it again, and its old
    workers can still be terminating, and listed, when this one starts).
    """
    out: dict[str, Any] = {}
    for namespace in NAMESPACES:
        pods = json.loads(
            demo_runs.current.cp.kubectl("get", "pods", "-n", namespace, "-o", "json")
        )
        for pod in pods["items"]:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            statuses = pod.get("status", {}).get("containerStatuses") or []
            out[f"{namespace}/{pod['metadata']['name']}"] = (
                pod["metadata"]["uid"],
                sorted((c.get("containerID"), c.get("restartCount")) for c in statuses),
            )
    return out


def _stack_ready(demo_runs: DemoRuns) -> tuple[bool, str]:
    """(Ready, its Ready condition's message)."""
    out = demo_runs.current.cp.kubectl("get", "rstack", "demo", "-n", "demo", "-o", "json")
    stack = json.loads(out)
    conditions = (stack.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    return is_ready(stack), str(ready.get("message", ""))


def test_a_restarted_kubelet_keeps_every_pod_and_the_stack_ready(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    cp, node = current.cp, current.cp.node
    assert node is not None
    before = _containers(demo_runs)
    assert _stack_ready(demo_runs)[0]
    not_ready: list[str] = []  # The Ready message of each poll that saw the stack not Ready.
    held: list[float] = []
    stop = threading.Event()

    def watch_ready() -> None:
        while not stop.is_set():
            ready, message = _stack_ready(demo_runs)
            if not ready:
                not_ready.append(message)
            elif "counted as ready until" in message:
                held.append(time.monotonic())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_ready, daemon=True)
    watcher.start()
    task = f"kubelet-{uuid.uuid4().hex[:8]}"
    url = demo.service_url(cp, "demo-api")
    posted: list[jobload.Posted] = []
    poster = threading.Thread(
        target=lambda: posted.append(asyncio.run(jobload.post_jobs(url, JOBS, task=task))),
        daemon=True,
    )
    try:
        poster.start()
        node.restart_daemon("kubelet", log_dir=cp.run_dir / "logs", down_seconds=DOWN_SECONDS)
        back = time.monotonic()
        poster.join(120)
        rows = jobload.wait_rows(current.postgres, task, JOBS, timeout=120)
        time.sleep(10)  # The kubelet's first syncs after its return.
    finally:
        stop.set()
        watcher.join(5)
    after = _containers(demo_runs)
    assert posted, "the jobs were not all posted"
    moved = sorted(name for name, seen in before.items() if after.get(name) != seen)
    assert moved == [], f"pods recreated or restarted by the kubelet's return: {moved}"
    assert not_ready == [], (
        f"the stack was not Ready {len(not_ready)} times (every 0.5 s): {not_ready}"
    )
    assert rows == (JOBS, JOBS)
    print(
        f"\nkubelet down {DOWN_SECONDS:.0f} s under {JOBS} jobs: {len(before)} pods, none "
        f"recreated or restarted; stack Ready throughout ({_held_span(held, back)}); "
        f"{rows[1]} of {JOBS} rows, one each; "
        f"503s retried: {posted[0].retried}; rows complete "
        f"{time.monotonic() - back - 10:.1f} s after its start; lost: nothing"
    )


def _held_span(held: list[float], back: float) -> str:
    if not held:
        return "no readiness drop held"
    return (
        f"a readiness drop held in {len(held)} polls, {held[0] - back:.1f} to "
        f"{held[-1] - back:.1f} s after the kubelet's start"
    )
