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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import retention_contract as contract
from harness import services
from harness.procs import free_port, port_open, start, wait_until
from harness.service_base import pgbouncer_with_prepared_statements
from retention_workloads.jobs import encode_entry

HERE = Path(__file__).resolve().parent
TARGETS = {
    "api_rps_per_instance": 1000,
    "api_p95_ms": 200,
    "worker_jobs_per_s": 100,
}


PREPARED_STATEMENTS = 200
"""max_prepared_statements of the newer PgBouncer; the workloads' cache is set to 100."""


@dataclass
class Servers:
    """Everything the benchmark runs against: one PostgreSQL, two PgBouncers, one Redis."""

    postgres: Any
    bouncer: Any
    """Debian's PgBouncer 1.18: the workloads run with statement_cache_size=0."""
    redis: Any
    prepared: Any | None = None
    """PgBouncer >= 1.21 with max_prepared_statements (None with --no-prepared)."""


@contextmanager
def servers(base: Path, *, prepared: bool) -> Iterator[Servers]:
    """Start PostgreSQL, the PgBouncers and Redis; stop them on the way out."""
    postgres = services.start_postgres(base_dir=base)
    started = Servers(postgres=postgres, bouncer=None, redis=None)
    try:
        started.bouncer = services.start_pgbouncer(postgres, base_dir=base)
        if prepared:
            started.prepared = services.start_pgbouncer(
                postgres,
                base_dir=base,
                binary=pgbouncer_with_prepared_statements(),
                overrides={"max_prepared_statements": str(PREPARED_STATEMENTS)},
                name="pgbouncer-prepared",
            )
        started.redis = services.start_redis(base_dir=base)
        yield started
    finally:
        if started.redis is not None:
            started.redis.stop()
        for bouncer in (started.prepared, started.bouncer):
            if bouncer is not None:
                bouncer.cleanup()
        postgres.cleanup()


def workload_env(
    bouncer: Any, redis_server: Any, stack: str, *, statement_cache: int = 0
) -> dict[str, str]:
    """The environment the operator would set, pointed at the local servers."""
    return {
        contract.ENV_STACK_NAME: stack,
        contract.ENV_STACK_NAMESPACE: "bench",
        contract.ENV_REDIS_URL: redis_server.url,
        contract.ENV_DATABASE_URL: (
            f"postgresql://{bouncer.user}@{bouncer.host}:{bouncer.port}/{bouncer.dbname}"
        ),
        contract.ENV_DATABASE_PASSWORD: bouncer.password,
        contract.ENV_DB_STATEMENT_CACHE_SIZE: str(statement_cache),
        contract.ENV_BIND_ADDRESS: "127.0.0.1",
        contract.ENV_LOG_LEVEL: "WARNING",
    }


WARMUP_S = 2.0
"""Seconds of each step left out of the served rate: Locust spawns its users then."""


@dataclass(frozen=True)
class Step:
    """One offered rate held for a while, and what the API made of it."""

    offered: int
    served: float
    p95_ms: float
    p50_ms: float
    server_p95_ms: float | None
    requests: int
    failures: int

    @property
    def sustained(self) -> bool:
        """Served >= 99 % of offered, p95 under the seed's 200 ms, and no error at all."""
        return (
            self.served >= 0.99 * self.offered
            and self.p95_ms < TARGETS["api_p95_ms"]
            and self.failures == 0
        )

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "sustained": self.sustained}


@contextmanager
def api_process(env: dict[str, str], base: Path) -> Iterator[str]:
    """One API process (the console script's code path); yields its base URL."""
    port = free_port()
    api = start(
        "api",
        [sys.executable, "-m", "retention_workloads.api"],
        log_dir=base,
        env={**env, contract.ENV_HTTP_PORT: str(port)},
    )
    try:
        wait_until(lambda: port_open(port), what="API", timeout=30, proc=api)
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


def offer(url: str, base: Path, *, rate: int, seconds: int) -> Step:
    """Offer ``rate`` req/s to the API at ``url`` with Locust for ``seconds``; return the step.

    Served is the rate Locust completed after its users were spawned (from its
    per-second history); p95 and p50 cover every request of the step.
    """
    users = max(rate // 10, 1)
    prefix = base / f"locust-{rate}"
    before = _histogram(httpx.get(f"{url}/metrics", timeout=5).text)
    locust = start(
        f"locust-{rate}",
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
    after = _histogram(httpx.get(f"{url}/metrics", timeout=5).text)
    return Step(
        offered=rate,
        served=_steady_rate(Path(f"{prefix}_stats_history.csv"), users=users),
        p95_ms=float(row["95%"]),
        p50_ms=float(row["50%"]),
        server_p95_ms=_p95({b: after[b] - before.get(b, 0.0) for b in after}),
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
    )


def _steady_rate(path: Path, *, users: int) -> float:
    """Requests per second between the first second with every user spawned and the end."""
    points: list[tuple[float, float]] = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated" and int(row["User Count"] or 0) >= users:
                points.append((float(row["Timestamp"]), float(row["Total Request Count"])))
    steady = [p for p in points if p[0] >= points[0][0] + WARMUP_S] if points else []
    if len(steady) < 2:
        return 0.0
    (t0, n0), (t1, n1) = steady[0], steady[-1]
    return round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else 0.0


def step_up(
    url: str, base: Path, *, start_rate: int, step: int, top: int, seconds: int
) -> list[Step]:
    """Offer ``start_rate``, then ``step`` more each time, until a step is not sustained
    or ``top`` is passed; return every step run (the last one is the first that failed)."""
    steps: list[Step] = []
    rate = start_rate
    while rate <= top:
        result = offer(url, base, rate=rate, seconds=seconds)
        steps.append(result)
        print(json.dumps(result.row()), file=sys.stderr, flush=True)
        if not result.sustained:
            break
        rate += step
    return steps


def api_summary(steps: list[Step]) -> dict[str, Any]:
    """The keys of the report: the highest sustained step (or the first step if none held)."""
    held = [s for s in steps if s.sustained]
    best = held[-1] if held else steps[0]
    return {
        "api_offered_rps": best.offered,
        "api_rps_per_instance": best.served if held else 0.0,
        "api_p95_ms": best.p95_ms,
        "api_p50_ms": best.p50_ms,
        "api_server_p95_ms": best.server_p95_ms,
        "api_requests": best.requests,
        "api_failures": best.failures,
        "api_steps": [s.row() for s in steps],
    }


def _aggregated(path: Path) -> dict[str, str]:
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return row
    raise RuntimeError(f"no Aggregated row in {path}")


def _histogram(text: str) -> dict[float, float]:
    """Cumulative bucket counts of the API's request histogram (v1 routes only)."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{contract.METRIC_API_REQUEST_DURATION}_bucket{{") and "/v1/" in line:
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def _p95(buckets: dict[float, float]) -> float | None:
    """p95 in ms from cumulative buckets, by linear interpolation inside the bucket."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
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
    parser.add_argument("--start", type=int, default=1000, help="first offered rate, req/s")
    parser.add_argument("--step", type=int, default=250, help="rate added per step, req/s")
    parser.add_argument("--max", type=int, default=4000, help="highest rate offered, req/s")
    parser.add_argument("--seconds", type=int, default=10, help="length of each step")
    parser.add_argument("--jobs", type=int, default=3000, help="backlog for the worker")
    parser.add_argument(
        "--no-prepared",
        action="store_true",
        help="skip the PgBouncer >= 1.21 path (it is built from source the first time)",
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-workloads-"))
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        with servers(base, prepared=not args.no_prepared) as running:
            env = workload_env(running.bouncer, running.redis, stack="bench")
            with api_process(env, base) as url:
                steps = step_up(
                    url,
                    base,
                    start_rate=args.start,
                    step=args.step,
                    top=args.max,
                    seconds=args.seconds,
                )
            result = api_summary(steps)
            result |= bench_worker(env, base, running.postgres, running.redis, jobs=args.jobs)
            if running.prepared is not None:
                result |= prepared_path(running, base, rate=result["api_offered_rps"], args=args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["targets"] = TARGETS
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_generator": "locust (FastHttpUser), same machine",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


def prepared_path(
    running: Servers, base: Path, *, rate: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The same API rate and worker backlog through PgBouncer >= 1.21 with prepared statements."""
    env = workload_env(running.prepared, running.redis, stack="bench-prepared", statement_cache=100)
    with api_process(env, base) as url:
        step = offer(url, base, rate=rate, seconds=args.seconds)
    worker = bench_worker(env, base, running.postgres, running.redis, jobs=args.jobs)
    return {
        "prepared_pgbouncer": f"1.24.1, max_prepared_statements={PREPARED_STATEMENTS}",
        "prepared_api_step": step.row(),
        "prepared_worker_jobs_per_s": worker["worker_jobs_per_s"],
    }


if __name__ == "__main__":
    main()
