"""Jobs sent to a stack's API from the host, and counted where they end: PostgreSQL.

Used by the node tier (and the demo's own check): every load here is bounded
in count, concurrency and time.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from harness.postgres_servers import PostgresServer


async def post_jobs(url: str, count: int, *, task: str, concurrency: int = 20) -> list[str]:
    """POST ``count`` jobs of ``task`` to ``url``; return their ids.

    Raises httpx.HTTPStatusError on the first POST that is not accepted.
    """
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with gate:
                reply = await client.post("/v1/jobs", json={"task": task, "payload": {"i": i}})
                reply.raise_for_status()
                return str(uuid.UUID(reply.json()["id"]))

        return list(await asyncio.gather(*(one(i) for i in range(count))))


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
