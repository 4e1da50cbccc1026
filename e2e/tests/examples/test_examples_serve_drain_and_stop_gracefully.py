"""The examples a team copies work as documented: each API enqueues, each worker drains
the queue, and SIGTERM stops a worker only after the job it holds is done (BullMQ's
``worker.close()``, RQ's warm shutdown). Real Redis, real libraries, processes.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import node_apps
from harness.procs import Proc, free_port, start, wait_until

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

RQ_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "rq"
JOBS = 20
SLOW_JOB_MS = 1500


def _env(redis: Any, name: str, job_ms: int) -> dict[str, str]:
    """The example's environment; RETENTION_METRICS_PORT is a free port of the worker's."""
    return {
        "RETENTION_METRICS_PORT": str(free_port()),
        "RETENTION_BIND_ADDRESS": "127.0.0.1",
        "RETENTION_REDIS_URL": redis.url,
        "RETENTION_QUEUE_NAME": name,
        "RETENTION_QUEUE_PREFIX": "bull",
        "EXAMPLE_JOB_MS": str(job_ms),
    }


def _post(url: str, n: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as http:
        wait_until(lambda: http.get("/readyz").status_code == 200, what="api", timeout=30)
        answers = [http.post("/v1/messages", json={"to": f"{i}@example.com"}) for i in range(n)]
    assert all(a.status_code == 202 for a in answers)
    return [a.json()["id"] for a in answers]


def _stop_and_wait(proc: Proc) -> int:
    """SIGTERM once, as a kubelet does, and return the exit code."""
    proc.popen.send_signal(signal.SIGTERM)
    return proc.popen.wait(timeout=30)


def test_bullmq_example(redis_db: Any, tmp_path: Path) -> None:
    env = _env(redis_db, "messages", SLOW_JOB_MS)
    port = free_port()
    api_env = {**env, "RETENTION_HTTP_PORT": str(port), "RETENTION_BIND_ADDRESS": "127.0.0.1"}
    example = node_apps.BULLMQ_EXAMPLE
    api = example.start("src/api.js", run_dir=tmp_path / "api", name="api", env=api_env)
    worker = example.start("src/worker.js", run_dir=tmp_path / "w", name="worker", env=env)
    try:
        _post(f"http://127.0.0.1:{port}", 1)
        metrics = f"http://127.0.0.1:{env['RETENTION_METRICS_PORT']}/metrics"
        wait_until(lambda: httpx.get(metrics).status_code == 200, what="worker metrics", timeout=20)
        with redis_db.client() as conn:
            wait_until(lambda: conn.llen("bull:messages:active") == 1, what="active", timeout=20)
            stopped = time.monotonic()
            assert _stop_and_wait(worker) == 0
            # close() waited for the job: it finished (completed), it was not abandoned.
            assert time.monotonic() - stopped > 0.2
            assert conn.zcard("bull:messages:completed") == 1
            assert conn.llen("bull:messages:active") == 0
        fast = example.start(
            "src/worker.js",
            run_dir=tmp_path / "w2",
            name="worker",
            env={**env, "EXAMPLE_JOB_MS": "5"},
        )
        _post(f"http://127.0.0.1:{port}", JOBS)
        with redis_db.client() as conn:
            wait_until(lambda: conn.zcard("bull:messages:completed") == JOBS + 1, what="drained",
                       timeout=30)  # fmt: skip
        fast.stop()
    finally:
        worker.stop()
        api.stop()


def test_rq_example(redis_db: Any, tmp_path: Path) -> None:
    env = {**_env(redis_db, "default", SLOW_JOB_MS), "PYTHONPATH": str(RQ_EXAMPLE)}
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "api:app", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    api = start("rq-api", uvicorn, log_dir=tmp_path, env=env, cwd=RQ_EXAMPLE)
    worker = start("rq-worker", [sys.executable, "worker.py"], log_dir=tmp_path, env=env,
                   cwd=RQ_EXAMPLE)  # fmt: skip
    try:
        (job_id,) = _post(f"http://127.0.0.1:{port}", 1)
        with redis_db.client() as conn:
            wait_until(lambda: conn.zcard("rq:wip:default") == 1, what="started", timeout=20)
            assert _stop_and_wait(worker) == 0
            # Warm shutdown: the job ran to its end before the worker left.
            assert conn.hget(f"rq:job:{job_id}", "status") == "finished"
        fast = {**env, "EXAMPLE_JOB_MS": "5", "RETENTION_METRICS_PORT": str(free_port())}
        worker = start("rq-worker-2", [sys.executable, "worker.py"], log_dir=tmp_path, env=fast,
                       cwd=RQ_EXAMPLE)  # fmt: skip
        _post(f"http://127.0.0.1:{port}", JOBS)
        with redis_db.client() as conn:
            idle = ("rq:queue:default", "rq:wip:default")
            wait_until(lambda: conn.llen(idle[0]) + conn.zcard(idle[1]) == 0, what="drained",
                       timeout=30)  # fmt: skip
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert 'http_request_duration_seconds_count{method="POST",route="/v1/messages"' in (
                http.get("/metrics").text
            )
    finally:
        worker.stop()
        api.stop()
