"""PgBouncer restarted under load comes back on the same port and serves queries again."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from harness.services import PgBouncerServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


async def _load(dsn: str, stop: asyncio.Event, outcomes: list[tuple[float, bool]]) -> None:
    """Open a connection per query until ``stop`` is set, recording (time, succeeded)."""
    for _ in range(2000):
        if stop.is_set():
            return
        try:
            conn = await asyncpg.connect(dsn, statement_cache_size=0, timeout=2)
            try:
                await conn.fetchval("SELECT $1::int", 1)
            finally:
                await conn.close()
            outcomes.append((time.monotonic(), True))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            outcomes.append((time.monotonic(), False))
            await asyncio.sleep(0.05)


async def test_restarted_pgbouncer_accepts_connections_again(pgbouncer: PgBouncerServer) -> None:
    port = pgbouncer.port
    stop = asyncio.Event()
    outcomes: list[tuple[float, bool]] = []
    load = asyncio.create_task(_load(pgbouncer.dsn, stop, outcomes))
    await asyncio.sleep(0.5)

    await asyncio.to_thread(pgbouncer.restart)
    restarted_at = time.monotonic()
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(load, timeout=10)

    assert pgbouncer.port == port
    assert any(ok for at, ok in outcomes if at < restarted_at)
    assert any(ok for at, ok in outcomes if at > restarted_at)
    conn = await asyncpg.connect(pgbouncer.dsn, statement_cache_size=0, timeout=5)
    try:
        assert await conn.fetchval("SELECT current_user") == pgbouncer.user
    finally:
        await conn.close()
