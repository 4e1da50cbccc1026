"""``python -m bench.workloads [--json]``: measure the API and a worker on real servers.

Starts Redis, PostgreSQL and PgBouncer (transaction mode) with the test harness,
then, all on 127.0.0.1:

1. one API process under Locust at a fixed offered rate (``--rate``, default
   1000 req/s) for ``--seconds``; reports the throughput it served and the p95
   Locust measured, plus the p95 from the API's own histogram;
2. one worker with a trivial job (no CPU, no I/O wait) draining a backlog of
   ``--jobs`` entries; reports jobs/s from the commit times in PostgreSQL.

Every process is started in its own process group and stopped at the end,
whatever happens. Bounded: about 70 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import retention_contract as contract
from harness import services
from harness.procs import free_port, port_open, start, wait_until
from retention_workloads.jobs import encode_entry

HERE = Path(__file__).resolve().parent
TARGETS = {
    "api_rps_per_instance": 1000,
    "api_p95_ms": 200,
    "worker_jobs_per_s": 100,
}


@contextmanager
def servers(base: Path) -> Iterator[tuple[Any, Any, Any]]:
    """Start PostgreSQL, PgBouncer and Redis; stop them on the way out."""
    postgres = services.start_postgres(base_dir=base)
    bouncer = redis_server = None
    try:
        bouncer = services.start_pgbouncer(postgres, base_dir=base)
        redis_server = services.start_redis(base_dir=base)
        yield postgres, bouncer, redis_server
    finally:
        if redis_server is not None:
            redis_server.stop()
        if bouncer is not None:
            bouncer.cleanup()
        postgres.cleanup()


def workload_env(bouncer: Any, redis_server: Any, stack: str) -> dict[str, str]:
    """The environment the operator would set, pointed at the local servers."""
    return {
        contract.ENV_STACK_NAME: stack,
        contract.ENV_STACK_NAMESPACE: "bench",
        contract.ENV_REDIS_URL: redis_server.url,
        contract.ENV_DATABASE_URL: (
            f"postgresql://{bouncer.user}@{bouncer.host}:{bouncer.port}/{bouncer.dbname}"
        ),
        contract.ENV_DATABASE_PASSWORD: bouncer.password,
        contract.ENV_BIND_ADDRESS: "127.0.0.1",
        contract.ENV_LOG_LEVEL: "WARNING",
    }


def bench_api(env: dict[str, str], base: Path, *, rate: int, seconds: int) -> dict[str, Any]:
    """Offer ``rate`` req/s to one API process with Locust; return what it served."""
    port = free_port()
    api = start(
        "api",
        [sys.executable, "-m", "retention_workloads.api"],
        log_dir=base,
        env={**env, contract.ENV_HTTP_PORT: str(port)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open(port), what="API", timeout=30, proc=api)
        users = max(rate // 10, 1)
        prefix = base / "locust"
        locust = start(
            "locust",
            [
                str(Path(sys.executable).with_name("locust")),
                "-f",
                str(HERE / "locustfile.py"),
                "--headless",
                "--host",
                url,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{seconds}s",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--stop-timeout",
                "5",
            ],
            log_dir=base,
            env={"BENCH_USER_RPS": "10"},
        )
        try:
            locust.popen.wait(timeout=seconds + 40)
        finally:
            locust.stop()
        row = _aggregated(Path(f"{prefix}_stats.csv"))
        server_p95 = _server_p95(httpx.get(f"{url}/metrics", timeout=5).text)
    finally:
        api.stop()
    return {
        "api_offered_rps": rate,
        "api_rps_per_instance": round(float(row["Requests/s"]), 1),
        "api_p95_ms": float(row["95%"]),
        "api_p50_ms": float(row["50%"]),
        "api_server_p95_ms": server_p95,
        "api_requests": int(row["Request Count"]),
        "api_failures": int(row["Failure Count"]),
    }


def _aggregated(path: Path) -> dict[str, str]:
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return row
    raise RuntimeError(f"no Aggregated row in {path}")


def _server_p95(text: str) -> float | None:
    """p95 in ms from the API's histogram (v1 routes only), by linear interpolation."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{contract.METRIC_API_REQUEST_DURATION}_bucket{{") and "/v1/" in line:
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    rank, lower, below = 0.95 * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return round(lower * 1000, 1)
            share = (rank - below) / max(buckets[bound] - below, 1e-9)
            return round((lower + (bound - lower) * share) * 1000, 1)
        lower, below = bound, buckets[bound]
    return None


def bench_worker(
    env: dict[str, str], base: Path, postgres: Any, redis_server: Any, *, jobs: int
) -> dict[str, Any]:
    """Drain a backlog of ``jobs`` trivial jobs with one worker; return its rate."""
    stream = contract.default_stream(
        env[contract.ENV_STACK_NAMESPACE], env[contract.ENV_STACK_NAME]
    )
    ids = [uuid.uuid4() for _ in range(jobs)]
    now_ms = int(time.time() * 1000)
    with redis_server.client() as client:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            fields = encode_entry(
                job_id=job_id, task="bench", payload_json="{}", enqueued_ms=now_ms, attempts=0
            )
            pipe.xadd(stream, fields)
        pipe.execute()
    worker = start(
        "worker",
        [sys.executable, "-m", "retention_workloads.worker"],
        log_dir=base,
        env={**env, contract.ENV_METRICS_PORT: str(free_port())},
    )
    try:
        done = asyncio.run(_wait_rows(postgres.dsn, ids, within_s=45))
    finally:
        worker.stop()
    return {"worker_jobs": done["count"], "worker_jobs_per_s": done["rate"]}


async def _wait_rows(dsn: str, ids: list[uuid.UUID], *, within_s: float) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    deadline = time.monotonic() + within_s
    query = (
        "SELECT count(*) AS n, min(finished_at) AS first, max(finished_at) AS last"
        " FROM retention_jobs WHERE id = ANY($1::uuid[])"
    )
    try:
        while True:
            with suppress(asyncpg.UndefinedTableError):
                row = await conn.fetchrow(query, ids)
                if row["n"] == len(ids) or time.monotonic() > deadline:
                    span = (row["last"] - row["first"]).total_seconds() if row["n"] > 1 else 0
                    rate = (row["n"] - 1) / span if span > 0 else 0.0
                    return {"count": int(row["n"]), "rate": round(rate, 1)}
            if time.monotonic() > deadline:
                return {"count": 0, "rate": 0.0}
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rate", type=int, default=1000, help="offered API load, req/s")
    parser.add_argument("--seconds", type=int, default=20, help="API load duration")
    parser.add_argument("--jobs", type=int, default=3000, help="backlog for the worker")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-workloads-"))
    started = time.monotonic()
    try:
        with servers(base) as (postgres, bouncer, redis_server):
            env = workload_env(bouncer, redis_server, stack="bench")
            result = bench_api(env, base, rate=args.rate, seconds=args.seconds)
            result |= bench_worker(env, base, postgres, redis_server, jobs=args.jobs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["targets"] = TARGETS
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_generator": "locust (FastHttpUser), same machine",
    }
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
