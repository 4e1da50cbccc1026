"""A Redis at its maxmemory (noeviction) makes the API refuse jobs with 503, never drop them.

The stream fills a small maxmemory with large payloads: each POST is either
a 202 whose job is in the stream or a 503 (reason ``redis_memory``) that
wrote nothing, never a 500. A worker then drains every accepted job, which
frees the memory, and new jobs are accepted again; Redis never restarted.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


MAXMEMORY = 4 * 1024 * 1024
PAYLOAD = {"blob": "x" * 60_000}


def test_a_full_redis_refuses_jobs_and_the_accepted_ones_are_all_done(
    standalone_backend, workloads, wait_for, refusals
):
    redis = workloads.redis()
    run_id = redis.info("server")["run_id"]
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", MAXMEMORY)
    try:
        _, url = workloads.api()
        accepted: list[uuid.UUID] = []
        statuses = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(200):
                body = {"task": "big", "payload": {"i": i, **PAYLOAD}}
                reply = client.post("/v1/jobs", json=body)
                statuses.append(reply.status_code)
                if reply.status_code == 202:
                    accepted.append(uuid.UUID(reply.json()["id"]))
                elif len(statuses) - len(accepted) >= 5:
                    break
            metrics = client.get("/metrics").text
        assert set(statuses) == {202, 503}, statuses
        assert accepted and len(accepted) < 200
        assert refusals(metrics, "redis_memory") == len(statuses) - len(accepted)
        assert redis.xlen(workloads.stream) == len(accepted)

        workloads.worker()
        wait_for(
            lambda: len(workloads.rows(accepted)) == len(accepted),
            what="every accepted job done",
            timeout=60,
        )
        # The workers trim what they acknowledged (every 10 s), which frees the memory.
        wait_for(
            lambda: (
                httpx.post(
                    f"{url}/v1/jobs", json={"task": "big", "payload": PAYLOAD}, timeout=10
                ).status_code
                == 202
            ),
            what="a job accepted once the stream is trimmed",
            timeout=40,
        )
        assert redis.info("server")["run_id"] == run_id, "Redis restarted"
    finally:
        redis.config_set("maxmemory", 0)
