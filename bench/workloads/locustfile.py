"""Locust load for the workloads API: mostly job submissions, some reads.

Each user keeps a constant rate (``BENCH_USER_RPS``), so the total rate is
users x rate whatever the latency, which is how a fixed offered load is
measured. A read of a job that has no row yet (404) counts as a success: the
read still goes through PgBouncer to PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import gevent
from locust import constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

_RATE = float(os.environ.get("BENCH_USER_RPS", "10"))
_MARKS = os.environ.get("BENCH_MARKS")
"""File to write the steady window to: requests counted one second after every user is
spawned, and again at the end, each with its time (the CSV history has whole seconds only)."""
_SETTLE_S = 1.0
_marks: dict[str, float] = {}
_environment: Any = None


@events.init.add_listener
def _keep(environment: Any, **_: Any) -> None:
    global _environment
    _environment = environment


def _mark(name: str) -> None:
    _marks[f"t_{name}"] = time.time()
    _marks[f"n_{name}"] = float(_environment.stats.total.num_requests)


@events.spawning_complete.add_listener
def _spawned(**_: Any) -> None:
    gevent.spawn_later(_SETTLE_S, _mark, "start")


@events.test_stopping.add_listener
def _stopping(**_: Any) -> None:
    if _MARKS and "t_start" in _marks:
        _mark("end")
        with open(_MARKS, "w") as handle:
            json.dump(_marks, handle)


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
