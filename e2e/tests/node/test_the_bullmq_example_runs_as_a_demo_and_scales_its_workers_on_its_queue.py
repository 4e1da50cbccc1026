"""The Hono + BullMQ example runs on the real node as ``make demo EXAMPLE=bullmq`` runs it.

``harness.demo.deploy`` (what ``make demo EXAMPLE=bullmq`` calls after the cluster,
the operator and PostgreSQL are up) applies ``examples/bullmq/stack.yaml`` with the
example's image, built on the project's base, in a namespace of its own that enforces
Pod Security ``restricted``; the stack becomes Ready and one message goes through its
API into BullMQ's completed set. Then a backlog: messages POSTed to the API's Service
(BullMQ's ``Queue.add`` in the example) that one worker would take longer than the
stack's ``targetQueueWaitSeconds`` to drain. The workers scale out within two ticks of
the fill, and the queue drains with every job completed: none failed, none left waiting
or active, the job counter at the count sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from harness import demo, images, jobload
from harness.fixtures_node import DemoRuns
from retention_operator.builders import naming

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

NAMESPACE = "messages"
# 1,500 jobs of 200 ms, four at a time: 75 s for one worker, past the example's 60 s target.
JOBS = 1500
TICK_SECONDS = 5  # the chart's tickSeconds
# BullMQ's keys of the example's queue: examples/bullmq/stack.yaml's prefix and name.
QUEUE = "{bull}:messages"
# Where a job can wait or run (BullMQ 5's layout): none may be left once drained.
PENDING = (
    ("LLEN", "wait"),
    ("LLEN", "paused"),
    ("LLEN", "active"),
    ("ZCARD", "delayed"),
    ("ZCARD", "prioritized"),
)


def test_the_bullmq_example_is_ready_carries_messages_and_scales_its_workers(
    demo_runs: DemoRuns,
) -> None:
    current = demo_runs.current
    cp = current.cp
    assert cp.node is not None
    built = images.build(["example-bullmq"])
    images.import_into(list(built.values()), address=cp.node.containerd_address)
    refs = {**current.refs, **{name: image.ref for name, image in built.items()}}
    try:
        deployed = demo.deploy(
            cp,
            current.postgres,
            postgres_ca=current.postgres_ca,
            refs=refs,
            example="bullmq",
            namespace=NAMESPACE,
        )
        stack = deployed.stack
        assert deployed.job_id == "1", "the first message is BullMQ's job 1"
        assert demo.workers_state(cp, stack, NAMESPACE)[0] == "1"

        url = demo.service_url(cp, naming.api(stack), NAMESPACE)
        task = f"backlog-{uuid.uuid4().hex[:8]}"
        asyncio.run(jobload.post_jobs(url, JOBS, task=task, path="/v1/messages"))
        filled = time.monotonic()
        deadline = filled + 3 * TICK_SECONDS + 2
        while int(demo.workers_state(cp, stack, NAMESPACE)[0]) <= 1:
            assert time.monotonic() < deadline, "the workers did not scale out within two ticks"
            time.sleep(0.5)
        print(f"workers scaled out {time.monotonic() - filled:.1f} s after the fill")

        def count(*args: str) -> int:
            pod = f"{naming.redis(stack)}-0"
            return int(demo.redis_cli(cp, pod, "-c", *args, namespace=NAMESPACE).strip() or 0)

        drain_by = time.monotonic() + 240
        left = JOBS
        while left:
            assert time.monotonic() < drain_by, f"{left} jobs still waiting or active"
            time.sleep(2)
            left = sum(count(command, f"{QUEUE}:{key}") for command, key in PENDING)
        print(f"drained {time.monotonic() - filled:.1f} s after the fill")
        assert count("ZCARD", f"{QUEUE}:failed") == 0
        assert count("GET", f"{QUEUE}:id") == JOBS + 1
    finally:
        # Waited for: the next run in the same cluster makes the namespace again.
        cp.kubectl("delete", "namespace", NAMESPACE, "--timeout=180s", check=False, timeout=200)
