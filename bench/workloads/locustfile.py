"""Locust load for the workloads API: mostly job submissions, some reads.

Each user keeps a constant rate (``BENCH_USER_RPS``), so the total rate is
users x rate whatever the latency, which is how a fixed offered load is
measured. A read of a job that has no row yet (404) counts as a success: the
read still goes through PgBouncer to PostgreSQL.
"""

from __future__ import annotations

import os
import random

from locust import constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

_RATE = float(os.environ.get("BENCH_USER_RPS", "10"))


class ApiUser(FastHttpUser):
    """Submits jobs (3 of 4 requests) and reads recent ones (1 of 4)."""

    wait_time = constant_throughput(_RATE)

    def on_start(self) -> None:
        self.recent: list[str] = []

    @task(3)
    def submit(self) -> None:
        body = {"task": "bench", "payload": {"n": random.randint(0, 1_000_000)}}
        with self.client.post(
            "/v1/jobs", json=body, name="POST /v1/jobs", catch_response=True
        ) as r:
            if r.status_code == 202:
                self.recent = [*self.recent[-9:], r.json()["id"]]
                r.success()
            else:
                r.failure(f"status {r.status_code}")

    @task(1)
    def read(self) -> None:
        if not self.recent:
            return
        job_id = random.choice(self.recent)
        with self.client.get(
            f"/v1/jobs/{job_id}", name="GET /v1/jobs/{id}", catch_response=True
        ) as r:
            if r.status_code in (200, 404):
                r.success()
            else:
                r.failure(f"status {r.status_code}")
