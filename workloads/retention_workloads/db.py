"""PostgreSQL through PgBouncer: the table of finished jobs, written and read with asyncpg.

PgBouncer runs in transaction mode, where consecutive statements of one client
may run on different server connections. asyncpg's named prepared statements
would then vanish between calls ("prepared statement __asyncpg_stmt_N__ does
not exist"), so the pool is created with the statement cache size from the
environment: 0 (the default) for PgBouncer < 1.21, or a positive size when
PgBouncer >= 1.21 runs with ``max_prepared_statements``. Nothing here calls
``Connection.prepare`` or the COPY helpers, which would prepare statements anyway.

Every write is one statement, hence one transaction that PgBouncer keeps on one
server connection, and it is committed when the call returns.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

# asyncpg ships no type information; its objects are Any here.
import asyncpg  # type: ignore[import-untyped]

from retention_workloads.settings import Settings

TABLE = "retention_jobs"
"""The table of finished jobs (spelled out in the SQL below, which stays plain text)."""

T = TypeVar("T")
Pool: TypeAlias = Any
"""An ``asyncpg.Pool`` (asyncpg has no type information, so mypy sees Any)."""

# One advisory lock key for schema changes, so that workers starting together
# do not race on CREATE TABLE IF NOT EXISTS (which can fail with a unique
# violation in pg_type when run concurrently).
_SCHEMA_LOCK = 0x7265_7465_6E74  # "retent"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retention_jobs (
    id           uuid PRIMARY KEY,
    task         text NOT NULL,
    state        text NOT NULL CHECK (state IN ('done', 'dead')),
    result       jsonb,
    error        text,
    attempts     integer NOT NULL,
    redeliveries integer NOT NULL DEFAULT 0,
    worker       text NOT NULL,
    enqueued_at  timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""
# A table made before started_at existed gets it (rows written before stay NULL).
_MIGRATE = "ALTER TABLE retention_jobs ADD COLUMN IF NOT EXISTS started_at timestamptz"

# The first write for a job id wins. A later write for the same id (a job run
# again after its worker died between commit and acknowledgement, or the retry
# of a commit whose reply was lost when PgBouncer went away) leaves the row as
# it was and only counts itself in redeliveries, which makes "done once" observable.
_RECORD = """
INSERT INTO retention_jobs (
    id, task, state, result, error, attempts, worker, enqueued_at, started_at
)
VALUES (
    $1, $2, $3, $4::jsonb, $5, $6, $7,
    to_timestamp($8::double precision / 1000), to_timestamp($9::double precision / 1000)
)
ON CONFLICT (id) DO UPDATE SET redeliveries = retention_jobs.redeliveries + 1
RETURNING (xmax = 0) AS inserted
"""

_READ = """
SELECT id, task, state, result::text AS result, error, attempts, finished_at
FROM retention_jobs WHERE id = $1
"""


@dataclass(frozen=True, kw_only=True)
class Row:
    """A job's row as the API reports it."""

    id: uuid.UUID
    task: str
    state: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    finished_at: datetime


async def create_pool(settings: Settings, *, min_size: int = 0, url: str | None = None) -> Pool:
    """Create a connection pool to PgBouncer; with ``min_size=0`` no connection is opened yet.

    ``url`` defaults to the primary pool (``settings.database_url``). The
    password comes from its own variable so that the URL, which may be
    logged, never carries it.
    """
    pool: Pool = await asyncpg.create_pool(
        url or settings.database_url,
        password=password_source(settings),
        min_size=min_size,
        max_size=settings.db_pool_max_size,
        statement_cache_size=settings.statement_cache_size,
        # Idle connections are closed so that a PgBouncer restart leaves few
        # dead ones behind, and a stuck statement cannot hold a job forever.
        max_inactive_connection_lifetime=30.0,
        reset=_no_session_reset,
        command_timeout=15.0,
        timeout=5.0,
    )
    return pool


async def _no_session_reset(conn: Any) -> None:
    """Return a connection to the pool without asyncpg's reset query.

    asyncpg would send ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: one more round trip per query. Nothing here
    sets session state (the schema lock is transaction-scoped), and behind
    PgBouncer in transaction mode the next query may run on another server
    connection anyway. An open transaction is still rolled back by asyncpg.
    """
    del conn


def password_source(settings: Settings) -> str | Callable[[], str | None] | None:
    """The password asyncpg logs in with: read from the file on each new connection, if set.

    A rotated password then reaches new connections without a restart, while
    open connections stay as they are. An unreadable file falls back to the
    password from the environment.
    """
    path = settings.database_password_file
    if path is None:
        return settings.database_password

    def read() -> str | None:
        try:
            return Path(path).read_text().rstrip("\n") or settings.database_password
        except OSError:
            return settings.database_password

    return read


async def ensure_schema(pool: Pool) -> None:
    """Create the jobs table if it is absent; safe to run from many processes at once."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(_SCHEMA)
        await conn.execute(_MIGRATE)


async def record(
    pool: Pool,
    *,
    job_id: uuid.UUID,
    task: str,
    state: str,
    result: dict[str, Any] | None,
    error: str | None,
    attempts: int,
    worker: str,
    enqueued_ms: int | None,
    started_ms: int | None = None,
) -> bool:
    """Write a finished job (state ``done`` or ``dead``) and commit.

    ``started_ms`` (Unix ms) is when the run that finished began; with
    ``enqueued_ms`` it gives the job's own queue wait.

    Returns True if this call created the row, False if the job already had one
    (the existing row is kept). Raises asyncpg errors as they come; the caller
    decides which are worth retrying.
    """
    inserted = await pool.fetchval(
        _RECORD,
        job_id,
        task,
        state,
        None if result is None else json.dumps(result),
        error,
        attempts,
        worker,
        enqueued_ms,
        started_ms,
    )
    return bool(inserted)


REPLICA_READ_TIMEOUT = 1.0
"""A read through the read pool that takes longer goes to the primary instead: a replica
that just went away keeps PgBouncer waiting for a server connection, not failing."""


@dataclass(frozen=True)
class Pools:
    """The primary pool, and the read pool when the stack has read replicas."""

    primary: Pool
    replica: Pool | None = None

    async def close(self) -> None:
        await self.primary.close()
        if self.replica is not None:
            await self.replica.close()


async def create_pools(settings: Settings) -> Pools:
    """Create the primary pool and, with ``database_read_url``, the read pool (not connected)."""
    primary = await create_pool(settings, min_size=0)
    if settings.database_read_url is None:
        return Pools(primary)
    return Pools(primary, await create_pool(settings, min_size=0, url=settings.database_read_url))


async def read_your_writes(pools: Pools, job_id: uuid.UUID) -> Row | None:
    """Return a finished job's row, from a replica when it has it, else from the primary.

    A replica may not have replayed a row the primary already committed, and
    may be down: a row it does not return (or an error of the read pool) is
    read again from the primary, so a client never sees a 404 for a job the
    worker has recorded. Errors of the primary propagate, and a primary that
    has not answered within :data:`PRIMARY_READ_SECONDS` raises TimeoutError
    (transient: the API answers 503), so a read never takes longer than
    ``REPLICA_READ_TIMEOUT + PRIMARY_READ_SECONDS``.
    """
    if pools.replica is not None:
        try:
            # The bound covers the connection too: PgBouncer holds a new client's
            # login until it has a server connection, which a dead replica never gives.
            row = await _within(read(pools.replica, job_id), REPLICA_READ_TIMEOUT)
        except Exception as exc:
            if not is_transient(exc):
                raise
            row = None
        if row is not None:
            return row
    return await _within(_read_again_while_transient(pools.primary, job_id), PRIMARY_READ_SECONDS)


PRIMARY_READ_SECONDS = 3.0
"""The longest a read of the primary (its retries included) takes before the API answers 503.

A PgBouncer pod killed at once (grace period 0) sends no FIN or RST: a pooled
connection to it waits for the command timeout (15 s) and a new one for the
connect timeout (5 s), each retried, while a client gives up long before. The
bound holds the retries of :data:`READ_RETRY_DELAYS` (1.5 s of pauses).
"""

READ_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8)
"""Pauses (s) between reads of the primary while its connection path fails.

PgBouncer closes its server connections when it reloads a changed password and
answers the clients it then cannot serve with an error for a moment; a read is
idempotent, so it is tried again on another connection for up to 1.5 s before
the API answers 503.
"""


async def _read_again_while_transient(pool: Pool, job_id: uuid.UUID) -> Row | None:
    """Return :func:`read` of the primary, tried again after each :data:`READ_RETRY_DELAYS`
    pause while it fails on the connection path; the last error propagates."""
    for delay in READ_RETRY_DELAYS:
        try:
            return await read(pool, job_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
        await asyncio.sleep(delay)
    return await read(pool, job_id)


async def _within(call: Coroutine[Any, Any, T], seconds: float) -> T:
    """Return ``call``'s result, or raise TimeoutError after ``seconds`` without waiting longer.

    Unlike ``asyncio.wait_for``, the caller does not wait for the abandoned call
    to unwind (asyncpg may take its connect timeout to do so); it is cancelled
    and left to end in the background.
    """
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    raise TimeoutError(f"no answer within {seconds:g}s")


async def read(pool: Pool, job_id: uuid.UUID) -> Row | None:
    """Return the row of a finished job, or None if the job has none (yet)."""
    try:
        found = await pool.fetchrow(_READ, job_id)
    except asyncpg.UndefinedTableError:
        # No worker has created the table yet, so no job has finished.
        return None
    if found is None:
        return None
    return Row(
        id=found["id"],
        task=found["task"],
        state=found["state"],
        result=None if found["result"] is None else json.loads(found["result"]),
        error=found["error"],
        attempts=found["attempts"],
        finished_at=found["finished_at"],
    )


async def ping(pool: Pool) -> bool:
    """Return True if a trivial query goes through PgBouncer to PostgreSQL; never raises."""
    try:
        return bool(await pool.fetchval("SELECT 1", timeout=2.0) == 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def is_transient(exc: BaseException) -> bool:
    """Return True for errors of the connection path (PgBouncer or PostgreSQL going away).

    Those say nothing about the job, so they are retried without counting an attempt.
    """
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        # A connection whose server went away mid-statement can be left with its
        # protocol mid-operation ("cannot switch to state 12; another operation is
        # in progress"); the pool closes it on release, and the next try gets another.
        | asyncpg.exceptions.InternalClientError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InsufficientResourcesError
        | asyncpg.TooManyConnectionsError,
    )
