"""An RQ producer driven step by step from a test: one JSON command per stdin line, one
JSON answer per stdout line. ``counts`` answers what RQ itself reports (``Queue.count``,
``StartedJobRegistry.count``, ``ScheduledJobRegistry.get_jobs_to_schedule``), the
reference the autoscaler's reading is compared with. RQ reads RQ_KEY_PREFIX when it is
imported, so each prefix runs in a process of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import Any

import rq
from redis import Redis
from redis.cluster import RedisCluster
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

URL = os.environ["RETENTION_REDIS_URL"]
CLUSTER = os.environ.get("RETENTION_REDIS_CLUSTER") == "true"
conn: Any = RedisCluster.from_url(URL) if CLUSTER else Redis.from_url(URL)
queue = Queue(os.environ["RETENTION_QUEUE_NAME"], connection=conn)


def add(*, tags: list[str], in_seconds: float | None = None) -> list[str]:
    ids = []
    for tag in tags:
        if in_seconds is None:
            job = queue.enqueue("rq_jobs.hold", tag)
        else:
            job = queue.enqueue_in(dt.timedelta(seconds=in_seconds), "rq_jobs.hold", tag)
        ids.append(job.id)
    return ids


def counts() -> dict[str, Any]:
    now = time.time()
    scheduled = ScheduledJobRegistry(queue=queue)
    due = scheduled.get_jobs_to_schedule(int(now))
    since = []
    head = queue.get_job_ids(0, 1)
    if head:
        enqueued = Job.fetch(head[0], connection=conn).enqueued_at
        if enqueued is not None:
            since.append(enqueued.replace(tzinfo=dt.UTC).timestamp() * 1000)
    if due:
        since.append(scheduled.get_scheduled_time(due[0]).timestamp() * 1000)
    return {
        "queued": queue.count,
        "started": StartedJobRegistry(queue=queue).count,
        "due": len(due),
        "oldestSince": min(since) if since else None,
    }


def release(*, tags: list[str]) -> None:
    for tag in tags:
        conn.set(f"release:{tag}", 1)


OPS = {"add": add, "counts": counts, "release": release, "version": lambda: rq.__version__}

for line in sys.stdin:
    command = json.loads(line)
    op = command.pop("op")
    if op == "quit":
        break
    try:
        answer: dict[str, Any] = {"result": OPS[op](**command)}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)
print(json.dumps({"result": "bye"}), flush=True)
