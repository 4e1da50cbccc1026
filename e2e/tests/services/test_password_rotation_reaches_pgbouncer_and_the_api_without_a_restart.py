"""A rotated database password reaches PgBouncer and the API by a reload, under load.

As in a pod: PgBouncer runs under the operator's start script, which writes its
auth file from the mounted password file and reloads (SIGHUP) when the file
changes; the API reads its password file on every new connection. The test
changes the role's password, then PgBouncer's file, then, a moment later (the
kubelet updates pods one by one), the API's file, while requests keep coming
and the API's pool grows (new connections, which must use the new password).
It counts the failed requests and prints them; at most a few may fail. A second
test kills PgBouncer's server connections under load, as the reload does: no
read may fail.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

import retention_contract as contract
from harness.procs import Proc, free_port, port_open, start, wait_until
from harness.services import PgBouncerServer, PostgresServer, start_pgbouncer
from retention_operator.builders import pgbouncer

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

SKEW_S = 0.5
MAX_FAILED = 3


@pytest.fixture
def bouncer(postgres: PostgresServer, tmp_path: Path, stack_on: Any) -> Iterator[PgBouncerServer]:
    server = start_pgbouncer(
        postgres,
        base_dir=tmp_path,
        rendered_ini=pgbouncer.render_pgbouncer_ini(stack_on(postgres)),
        run_script=pgbouncer.RUN_SCRIPT,
        name="pgbouncer-rotate",
    )
    yield server
    server.cleanup()


@pytest.fixture
def api(
    bouncer: PgBouncerServer, redis_db: object, tmp_path: Path
) -> Iterator[tuple[str, Path, Proc]]:
    """The API process with its password in a file, as the operator mounts it."""
    password_file = tmp_path / "api-password"
    password_file.write_text(bouncer.password)
    port = free_port()
    env = {
        contract.ENV_DATABASE_URL: (
            f"postgresql://{bouncer.user}@{bouncer.host}:{bouncer.port}/{bouncer.dbname}"
        ),
        contract.ENV_DATABASE_PASSWORD_FILE: str(password_file),
        contract.ENV_REDIS_URL: redis_db.url,  # type: ignore[attr-defined]
        contract.ENV_BIND_ADDRESS: "127.0.0.1",
        contract.ENV_HTTP_PORT: str(port),
        contract.ENV_DB_POOL_MAX_SIZE: "16",
        contract.ENV_LOG_LEVEL: "WARNING",
    }
    proc = start(
        "api-rotate", [sys.executable, "-m", "retention_workloads.api"], log_dir=tmp_path, env=env
    )
    try:
        wait_until(lambda: port_open(port), what="API", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}", password_file, proc
    finally:
        proc.stop()


async def _load(url: str, *, clients: int, seconds: float, counts: dict[str, int]) -> None:
    """``clients`` loops of GET /v1/jobs/{id} (a query through PgBouncer) for ``seconds``."""
    deadline = time.monotonic() + seconds

    async def one(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            response = await http.get(f"/v1/jobs/{uuid.uuid4()}")
            counts["ok" if response.status_code == 404 else "failed"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await asyncio.gather(*(one(http) for _ in range(clients)))


async def _login(bouncer: PgBouncerServer, password: str) -> bool:
    try:
        conn = await asyncpg.connect(
            host=bouncer.host,
            port=bouncer.port,
            user=bouncer.user,
            database=bouncer.dbname,
            password=password,
            statement_cache_size=0,
            timeout=5,
        )
    except asyncpg.PostgresError:  # PgBouncer says "SASL authentication failed"
        return False
    await conn.close()
    return True


async def test_a_rotated_password_fails_at_most_a_few_requests(
    postgres: PostgresServer, bouncer: PgBouncerServer, api: tuple[str, Path, Proc]
) -> None:
    url, api_password, _ = api
    old, new = postgres.password, secrets.token_hex(12)
    counts = {"ok": 0, "failed": 0}
    try:
        before = asyncio.create_task(_load(url, clients=4, seconds=3, counts=counts))
        await asyncio.sleep(1.5)
        # The database first (open sessions keep working), then the Secret as the
        # kubelet delivers it: PgBouncer's pod, and a moment later the API's.
        await asyncio.to_thread(postgres.psql_super, f"ALTER ROLE {postgres.user} PASSWORD '{new}'")
        bouncer.set_password(new)
        await asyncio.sleep(SKEW_S)
        api_password.write_text(new)
        await before
        # More clients than open connections: the pool grows with the new password.
        await _load(url, clients=16, seconds=4, counts=counts)

        assert await _login(bouncer, new), "PgBouncer accepts the new password"
        assert not await _login(bouncer, old), "and no longer the old one"
        total = counts["ok"] + counts["failed"]
        print(f"\nrotation under load: {counts['failed']} failed of {total} requests")
        assert counts["ok"] > 100
        assert counts["failed"] <= MAX_FAILED
    finally:
        await asyncio.to_thread(postgres.psql_super, f"ALTER ROLE {postgres.user} PASSWORD '{old}'")


async def test_reads_survive_pgbouncer_losing_its_server_connections(
    postgres: PostgresServer, bouncer: PgBouncerServer, api: tuple[str, Path, Proc]
) -> None:
    """PgBouncer closes its server connections when it reloads a new password; the
    reads that were on them are answered from new ones, not with a 503."""
    url, _, _ = api
    counts = {"ok": 0, "failed": 0}
    load = asyncio.create_task(_load(url, clients=8, seconds=4, counts=counts))
    await asyncio.sleep(1)
    for _ in range(5):  # bounded: five rounds, 0.3 s apart
        await asyncio.to_thread(
            postgres.psql_super,
            # Every session of a role that is not a superuser: PgBouncer's.
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usesysid IN (SELECT oid FROM pg_roles WHERE NOT rolsuper)",
        )
        await asyncio.sleep(0.3)
    await load
    total = counts["ok"] + counts["failed"]
    print(f"\nserver connections killed under load: {counts['failed']} failed of {total}")
    assert counts["ok"] > 100
    assert counts["failed"] == 0
