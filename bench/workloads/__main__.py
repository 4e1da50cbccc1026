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

import asyncpg  # type: ignore[import-untyped]
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
    api_cpu_ms_per_request: float | None = None
    """CPU time (user + system) the API process spent per request served in this step."""

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


# The API as it was before uvicorn[standard]: the stdlib event loop and the
# pure-Python h11 parser, everything else the same (the baseline of the levers).
_BASELINE_API = (
    "import uvicorn\n"
    "from retention_workloads import api, settings\n"
    "config = settings.load()\n"
    "uvicorn.run(api.create_app(config), host=config.bind_address, port=config.http_port,\n"
    "            log_config=None, access_log=False, server_header=False, backlog=2048,\n"
    "            loop='asyncio', http='h11')\n"
)


@dataclass(frozen=True)
class Api:
    """A running API process: its URL and pid (for its CPU time)."""

    url: str
    pid: int


@contextmanager
def api_process(env: dict[str, str], base: Path, *, baseline: bool = False) -> Iterator[Api]:
    """One API process: the console script's code path, or with ``baseline`` the same app
    on the stdlib loop and h11. Yields its URL and pid."""
    port = free_port()
    argv = [sys.executable, "-m", "retention_workloads.api"]
    if baseline:
        argv = [sys.executable, "-c", _BASELINE_API]
    api = start(
        "api-baseline" if baseline else "api",
        argv,
        log_dir=base,
        env={**env, contract.ENV_HTTP_PORT: str(port)},
    )
    try:
        wait_until(lambda: port_open(port), what="API", timeout=30, proc=api)
        yield Api(f"http://127.0.0.1:{port}", api.pid)
    finally:
        api.stop()


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def offer(api: Api, base: Path, *, rate: int, seconds: int, user_rps: int = 10) -> Step:
    """Offer ``rate`` req/s to the API at ``url`` with Locust for ``seconds``; return the step.

    Served is the rate Locust completed from a second after its users were
    spawned to the end; p95 and p50 cover every request of the step. Each
    Locust user sends ``user_rps`` requests a second, one at a time, so it can
    keep that rate only while a response takes less than ``1 / user_rps`` s.
    """
    url = api.url
    users = max(rate // user_rps, 1)
    prefix = base / f"locust-{rate}-{time.monotonic_ns()}"
    before = _histogram(httpx.get(f"{url}/metrics", timeout=5).text)
    cpu_before = _cpu_seconds(api.pid)
    marks = Path(f"{prefix}_marks.json")
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
        env={"BENCH_USER_RPS": str(user_rps), "BENCH_MARKS": str(marks)},
    )
    try:
        locust.popen.wait(timeout=seconds + 40)
    finally:
        locust.stop()
    row = _aggregated(Path(f"{prefix}_stats.csv"))
    cpu = _cpu_seconds(api.pid) - cpu_before
    after = _histogram(httpx.get(f"{url}/metrics", timeout=5).text)
    requests = int(row["Request Count"])
    return Step(
        offered=rate,
        served=_steady_rate(marks),
        p95_ms=float(row["95%"]),
        p50_ms=float(row["50%"]),
        server_p95_ms=_p95({b: after[b] - before.get(b, 0.0) for b in after}),
        requests=requests,
        failures=int(row["Failure Count"]),
        api_cpu_ms_per_request=round(cpu * 1000 / requests, 3) if requests else None,
    )


def _steady_rate(marks: Path) -> float:
    """Requests per second from a second after every user was spawned to the end (0 if the
    run never got that far), from the marks the locustfile writes."""
    try:
        got = json.loads(marks.read_text())
    except (OSError, ValueError):
        return 0.0
    span = got["t_end"] - got["t_start"]
    return round((got["n_end"] - got["n_start"]) / span, 1) if span > 0 else 0.0


def saturate(api: Api, *, clients: int, seconds: int) -> dict[str, Any]:
    """A closed loop on the API: ``clients`` clients each post a job, wait for the answer and
    post the next, until ``seconds`` have passed; return the rate served and its latencies.

    With more clients than the API serves at once, the rate served is the API's capacity.
    Bounded: no request starts after the deadline, and each has a 30 s timeout.
    """
    latencies: list[float] = []
    failures = 0

    async def run() -> None:
        nonlocal failures
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=api.url, timeout=30, limits=limits) as client:

            async def loop(n: int) -> None:
                nonlocal failures
                while time.monotonic() < deadline:
                    sent = time.monotonic()
                    answer = await client.post("/v1/jobs", json={"task": "saturate", "payload": {}})
                    if answer.status_code == 202:
                        latencies.append(time.monotonic() - sent)
                    else:
                        failures += 1

            await asyncio.gather(*(loop(n) for n in range(clients)))

    cpu_before = _cpu_seconds(api.pid)
    started = time.monotonic()
    asyncio.run(run())
    span = time.monotonic() - started
    cpu = _cpu_seconds(api.pid) - cpu_before
    latencies.sort()

    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    return {
        "clients": clients,
        "seconds": round(span, 1),
        "served_rps": round(len(latencies) / span, 1),
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "requests": len(latencies),
        "failures": failures,
        "api_cpu_ms_per_request": round(cpu * 1000 / len(latencies), 3) if latencies else None,
    }


def step_up(
    api: Api, base: Path, *, start_rate: int, step: int, top: int, seconds: int, user_rps: int = 10
) -> list[Step]:
    """Offer ``start_rate``, then ``step`` more each time, until a step is not sustained
    or ``top`` is passed; return every step run (the last one is the first that failed)."""
    steps: list[Step] = []
    rate = start_rate
    while rate <= top:
        result = offer(api, base, rate=rate, seconds=seconds, user_rps=user_rps)
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
        "--lever-rate",
        type=int,
        default=600,
        help="rate at which the API's CPU per request is compared with the baseline's",
    )
    parser.add_argument(
        "--user-rps",
        type=int,
        default=10,
        help="requests a second per Locust user (lower it when a response takes 100 ms or more)",
    )
    parser.add_argument(
        "--api-service-ms",
        type=int,
        default=0,
        help="the API's RETENTION_API_SERVICE_MS (I/O wait per request; 0: none)",
    )
    parser.add_argument(
        "--api-concurrency",
        type=int,
        default=0,
        help="the API's RETENTION_API_CONCURRENCY (requests served at once; 0: no limit)",
    )
    parser.add_argument(
        "--saturate",
        type=int,
        default=0,
        metavar="CLIENTS",
        help="instead of the steps: CLIENTS clients post back to back for --seconds (the "
        "API's capacity); implies --api-only",
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="run the stepped API part only (no levers, worker or prepared-statements path)",
    )
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
            bounded = {
                contract.ENV_API_SERVICE_MS: str(args.api_service_ms),
                contract.ENV_API_CONCURRENCY: str(args.api_concurrency),
            }
            result: dict[str, Any]
            with api_process({**env, **bounded}, base) as api:
                if args.saturate:
                    result = {
                        "api_saturated": saturate(api, clients=args.saturate, seconds=args.seconds)
                    }
                    args.api_only = True
                else:
                    result = api_summary(
                        step_up(
                            api,
                            base,
                            start_rate=args.start,
                            step=args.step,
                            top=args.max,
                            seconds=args.seconds,
                            user_rps=args.user_rps,
                        )
                    )
            result["api_capacity_bound"] = {
                "service_ms": args.api_service_ms,
                "concurrency": args.api_concurrency,
                "predicted_rps": (
                    round(args.api_concurrency * 1000 / args.api_service_ms, 1)
                    if args.api_service_ms and args.api_concurrency
                    else None
                ),
            }
            if not args.api_only:
                result |= levers(env, base, rate=args.lever_rate, seconds=args.seconds)
                result |= bench_worker(env, base, running.postgres, running.redis, jobs=args.jobs)
            if running.prepared is not None and not args.api_only:
                result |= prepared_path(running, base, rate=result["api_offered_rps"], args=args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _report(result, args, started=started, load_before=load_before)


def _report(
    result: dict[str, Any],
    args: argparse.Namespace,
    *,
    started: float,
    load_before: tuple[float, float, float],
) -> None:
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


def levers(env: dict[str, str], base: Path, *, rate: int, seconds: int) -> dict[str, Any]:
    """CPU per request of the shipped API (uvloop, httptools) and of the baseline (stdlib
    loop, h11) at the same offered rate, one after the other in this run.

    CPU time per request depends little on what else runs on the machine, unlike
    the highest sustained rate, so the ratio holds on a busy machine too.
    """
    out: dict[str, Any] = {}
    for name, baseline in (("baseline", True), ("shipped", False)):
        with api_process(env, base, baseline=baseline) as api:
            out[name] = offer(api, base, rate=rate, seconds=seconds).row()
    base_ms = out["baseline"]["api_cpu_ms_per_request"]
    ours_ms = out["shipped"]["api_cpu_ms_per_request"]
    return {
        "api_levers": {
            "rate": rate,
            "baseline_asyncio_h11": out["baseline"],
            "shipped_uvloop_httptools": out["shipped"],
            "cpu_per_request_ratio": round(base_ms / ours_ms, 2) if base_ms and ours_ms else None,
        }
    }


def prepared_path(
    running: Servers, base: Path, *, rate: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The same API rate and worker backlog through PgBouncer >= 1.21 with prepared statements."""
    env = workload_env(running.prepared, running.redis, stack="bench-prepared", statement_cache=100)
    with api_process(env, base) as api:
        step = offer(api, base, rate=rate, seconds=args.seconds)
    worker = bench_worker(env, base, running.postgres, running.redis, jobs=args.jobs)
    return {
        "prepared_pgbouncer": f"1.24.1, max_prepared_statements={PREPARED_STATEMENTS}",
        "prepared_api_step": step.row(),
        "prepared_worker_jobs_per_s": worker["worker_jobs_per_s"],
    }


if __name__ == "__main__":
    main()
