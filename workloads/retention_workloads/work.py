"""The unit of work a job stands for: a configurable amount of CPU time and I/O wait.

The real application's task code would live here. What the stack needs to
prove is how the queue, the database and the autoscaler behave, so a job burns
``cpu_ms`` of CPU time (hashing, the way real jobs spend CPU in Python) and
waits ``io_ms`` (as a call to another service would); benchmarks set both.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from retention_workloads.jobs import Job

# CPU work is cut into slices so that the event loop still serves the other
# jobs, the heartbeat and SIGTERM while a long job computes.
_SLICE_S = 0.005


async def run(job: Job, *, cpu_ms: int, io_ms: int) -> dict[str, Any]:
    """Run ``job`` and return its result: a digest of its input and what it cost.

    The digest depends only on the job, so two runs of one job give one result.
    """
    digest = hashlib.sha256(job.id.bytes + json.dumps(job.payload, sort_keys=True).encode())
    scratch = digest.digest()
    if cpu_ms > 0:
        # thread_time counts CPU time, not wall time: under contention a job
        # takes longer but costs what it was told to cost.
        budget_end = time.thread_time() + cpu_ms / 1000
        while time.thread_time() < budget_end:
            slice_end = min(budget_end, time.thread_time() + _SLICE_S)
            while time.thread_time() < slice_end:
                for _ in range(64):
                    scratch = hashlib.sha256(scratch).digest()
            await asyncio.sleep(0)
    if io_ms > 0:
        await asyncio.sleep(io_ms / 1000)
    return {"task": job.task, "digest": digest.hexdigest(), "cpu_ms": cpu_ms, "io_ms": io_ms}
