"""asyncpg through PgBouncer 1.18 in transaction pool mode.

With ``statement_cache_size=0`` asyncpg sends unnamed statements, so any
server connection can run them. With the default cache it names the
statements it prepares, and a later execution can be routed to a server
connection that never saw the name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from harness.services import PgBouncerServer, PostgresServer, start_pgbouncer

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

CLIENTS = 20
QUERIES_PER_CLIENT = 25


@pytest.fixture
def private_pgbouncer(postgres: PostgresServer, tmp_path: Path) -> Iterator[PgBouncerServer]:
    """A PgBouncer of this test's own, so named statements never reach the shared pool."""
    bouncer = start_pgbouncer(postgres, base_dir=tmp_path)
    yield bouncer
    bouncer.cleanup()


async def _client_sums(dsn: str, client: int) -> list[int]:
    conn = await asyncpg.connect(dsn, statement_cache_size=0, timeout=10)
    try:
        return [
            await conn.fetchval("SELECT $1::int + $2::int", client, index)
            for index in range(QUERIES_PER_CLIENT)
        ]
    finally:
        await conn.close()


async def test_repeated_parameterised_queries_work_without_statement_cache(
    pgbouncer: PgBouncerServer,
) -> None:
    # More clients than default_pool_size, so server connections are shared.
    results = await asyncio.gather(*(_client_sums(pgbouncer.dsn, c) for c in range(CLIENTS)))

    for client, sums in enumerate(results):
        assert sums == [client + index for index in range(QUERIES_PER_CLIENT)]


async def test_default_statement_cache_breaks_when_the_server_connection_changes(
    private_pgbouncer: PgBouncerServer,
) -> None:
    first = await asyncpg.connect(private_pgbouncer.dsn, timeout=10)
    second = await asyncpg.connect(private_pgbouncer.dsn, timeout=10)
    try:
        # Prepares a named statement on the only server connection in the pool.
        assert await first.fetchval("SELECT $1::int", 1) == 1
        # The second client holds that server connection for its transaction, so
        # the first client's next query runs on a new one without the statement.
        async with second.transaction():
            await second.execute("SELECT 1")
            with pytest.raises(asyncpg.InvalidSQLStatementNameError, match="pgbouncer"):
                await first.fetchval("SELECT $1::int", 2)
    finally:
        await first.close()
        await second.close()
