"""Read WAL positions from a primary and its replicas (asyncpg, straight to the servers).

Connections are kept between ticks, one per server, and dropped on any error
so that the next tick connects again (with a password read afresh). Every
query is a plain function call that any role may run; nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any

# asyncpg ships no type information.
import asyncpg  # type: ignore[import-untyped]

from retention_operator.readpool.membership import parse_lsn

ServerKey = tuple[str, int, str, str]
"""(host, port, database, user)."""


@dataclass(frozen=True)
class ReplicaReading:
    """What one replica said: its replayed LSN, or why it is of no use for reads."""

    replay_lsn: int | None
    error: str | None = None


class Connections:
    """One asyncpg connection per server, opened on first use and reused."""

    def __init__(self, *, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._conns: dict[ServerKey, Any] = {}

    async def _conn(
        self, key: ServerKey, *, password: str | None, ssl_arg: ssl.SSLContext | str | bool
    ) -> Any:
        conn = self._conns.get(key)
        if conn is not None and not conn.is_closed():
            return conn
        host, port, dbname, user = key
        conn = await asyncpg.connect(
            host=host,
            port=port,
            database=dbname,
            user=user,
            password=password,
            ssl=ssl_arg,
            timeout=self._timeout,
            statement_cache_size=0,
            server_settings={"application_name": "retention-operator-lag"},
        )
        self._conns[key] = conn
        return conn

    async def fetchrow(
        self,
        key: ServerKey,
        query: str,
        *,
        password: str | None,
        ssl_arg: ssl.SSLContext | str | bool,
    ) -> Any:
        """Run ``query`` on the server ``key``; on any error drop the connection and raise."""
        try:
            conn = await self._conn(key, password=password, ssl_arg=ssl_arg)
            return await conn.fetchrow(query, timeout=self._timeout)
        except BaseException:
            await self.drop(key)
            raise

    async def drop(self, key: ServerKey) -> None:
        conn = self._conns.pop(key, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout)

    async def close(self) -> None:
        for key in list(self._conns):
            await self.drop(key)


async def primary_lsn(
    conns: Connections,
    key: ServerKey,
    *,
    password: str | None,
    ssl_arg: ssl.SSLContext | str | bool,
) -> int:
    """Return the primary's current WAL position; raises on any connection or query error."""
    row = await conns.fetchrow(
        key, "SELECT pg_current_wal_lsn()::text AS lsn", password=password, ssl_arg=ssl_arg
    )
    return parse_lsn(str(row["lsn"]))


async def replica_reading(
    conns: Connections,
    key: ServerKey,
    *,
    password: str | None,
    ssl_arg: ssl.SSLContext | str | bool,
) -> ReplicaReading:
    """Return the replica's replayed WAL position, or the error that keeps it from reads."""
    query = "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn"
    try:
        row = await conns.fetchrow(key, query, password=password, ssl_arg=ssl_arg)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return ReplicaReading(None, f"cannot be read: {type(exc).__name__}: {exc}"[:300])
    if not row["standby"]:
        return ReplicaReading(None, "is not a standby (pg_is_in_recovery() is false)")
    if row["lsn"] is None:
        return ReplicaReading(None, "has replayed no WAL yet")
    return ReplicaReading(parse_lsn(str(row["lsn"])))
