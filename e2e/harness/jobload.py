"""Jobs sent to a stack's API from the host, and counted where they end: PostgreSQL.

Used by the node tier (and the demo's own check): every load here is bounded
in count, concurrency and time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from harness.postgres_servers import PostgresServer

# A careful client retries a 503 after its Retry-After, a few times.
RETRIES = 5
#: Where the project's API takes a job.
JOBS_PATH = "/v1/jobs"


@dataclass
class Posted:
    """The ids of the jobs accepted, and how many 503s were retried on the way."""

    ids: list[str]
    retried: int = 0


async def post_jobs(
    url: str, count: int, *, task: str, concurrency: int = 20, path: str = JOBS_PATH
) -> Posted:
    """POST ``count`` jobs of ``task`` to ``url`` + ``path``, retrying 503s; return the ids.

    The body is ``{"task": task, "payload": {"i": n}}``, a JSON object any
    API taking jobs accepts (the examples' too); the id is the reply's ``id``.

    Raises httpx.HTTPStatusError on a POST that is refused otherwise, or
    still unavailable after ``RETRIES`` retries.
    """
    posted = Posted(ids=[])
    # Idle connections are dropped after 1 s, well inside Node.js's 5 s keep-alive
    # (the BullMQ example's API): at httpx's default of 5 s a connection the server
    # has just closed can be reused, and the POST sent on it is reset unanswered.
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with gate:
                for attempt in range(RETRIES + 1):
                    reply = await client.post(path, json={"task": task, "payload": {"i": i}})
                    if reply.status_code != 503 or attempt == RETRIES:
                        break
                    posted.retried += 1
                    await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                reply.raise_for_status()
                return str(reply.json()["id"])

        posted.ids = list(await asyncio.gather(*(one(i) for i in range(count))))
    return posted


def rows(postgres: PostgresServer, task: str) -> tuple[int, int]:
    """(rows, distinct ids) of ``task`` in the jobs table; (0, 0) before the table exists."""
    if not task.replace("-", "").isalnum():
        raise ValueError(f"task names here are letters, digits and '-': {task!r}")
    exists = postgres.psql_super(
        "SELECT to_regclass('retention_jobs') IS NOT NULL", dbname=postgres.dbname
    )
    if exists.strip() != "t":
        return 0, 0
    out = postgres.psql_super(
        "SELECT count(*), count(DISTINCT id) FROM retention_jobs WHERE task = "  # noqa: S608
        f"'{task}'",
        dbname=postgres.dbname,
    )
    total, distinct = out.strip().split("|")
    return int(total), int(distinct)


def wait_rows(
    postgres: PostgresServer, task: str, count: int, *, timeout: float
) -> tuple[int, int]:
    """Wait until ``count`` rows of ``task`` exist (or ``timeout`` passes): (rows, distinct)."""
    deadline = time.monotonic() + timeout
    found = rows(postgres, task)
    while found[0] < count and time.monotonic() < deadline:
        time.sleep(1)
        found = rows(postgres, task)
    return found
