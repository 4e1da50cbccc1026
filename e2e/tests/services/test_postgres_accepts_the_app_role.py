"""PostgreSQL accepts the application role with its password, and only with it."""

from __future__ import annotations

import asyncpg
import pytest

from harness.services import PostgresServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


async def test_app_role_connects_to_its_database(postgres: PostgresServer) -> None:
    assert postgres.dsn == (
        f"postgresql://{postgres.user}:{postgres.password}@127.0.0.1:{postgres.port}/{postgres.dbname}"
    )
    conn = await asyncpg.connect(postgres.dsn, timeout=10)
    try:
        row = await conn.fetchrow("SELECT current_user AS usr, current_database() AS db")
    finally:
        await conn.close()
    assert row is not None
    assert (row["usr"], row["db"]) == (postgres.user, postgres.dbname)


async def test_wrong_password_is_refused(postgres: PostgresServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=f"not-{postgres.password}",
            database=postgres.dbname,
            timeout=10,
        )
