"""TLS towards PostgreSQL with a CA the test makes: PgBouncer (rendered by the builders) and
the operator's preflight both accept the right CA and host and refuse a wrong CA or host name.

The server's certificate names 127.0.0.1 only, so ``localhost`` is the wrong host name.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.service_base import free_ports, postgres_bin_dir
from harness.services import (
    NotReady,
    PgBouncerServer,
    PostgresServer,
    ServerTls,
    create_server_tls,
    start_postgres,
)
from retention_operator.builders import pgbouncer
from retention_operator.reconcile import database

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


VERIFY_FULL = {"ca": {"secretKeyRef": {"name": "db-ca", "key": "ca.crt"}}}


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    """A CA that did not sign the server's certificate."""
    return create_server_tls(
        tmp_path_factory.mktemp("other-ca"), hosts=["127.0.0.1"], ca_name="someone-else"
    )


def _bouncer(
    postgres: PostgresServer, base: Path, *, stack_on: Any, host: str, ca: Path, name: str
) -> PgBouncerServer:
    """A PgBouncer (not started) with the ini the builders render for verify-full."""
    stack = stack_on(postgres, host=host, tls=VERIFY_FULL)
    ini = pgbouncer.render_pgbouncer_ini(stack)
    assert "server_tls_sslmode = verify-full" in ini
    (port,) = free_ports(1)
    root = postgres.run_as.private_dir(base=base, name=name)
    # PgBouncer runs as another user when the tests run as root: it gets its own copy.
    ca_copy = root / "ca.crt"
    shutil.copyfile(ca, ca_copy)
    postgres.run_as.own(ca_copy)
    return PgBouncerServer(
        port=port,
        root=root,
        log_dir=base,
        run_as=postgres.run_as,
        backend=postgres,
        rendered_ini=ini,
        # The CA file is where the harness keeps it rather than the pod's mount.
        overrides={"server_tls_ca_file": str(ca_copy)},
        run_script=pgbouncer.RUN_SCRIPT,
        name=name,
    )


@pytest.fixture
def verified(
    postgres: PostgresServer, postgres_tls: ServerTls, tmp_path: Path, stack_on: Any
) -> Iterator[PgBouncerServer]:
    ca = postgres_tls.ca_cert
    bouncer = _bouncer(postgres, tmp_path, stack_on=stack_on, host="127.0.0.1", ca=ca, name="ok")
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.cleanup()


def test_verify_full_with_the_right_ca_and_host_connects_over_tls(
    verified: PgBouncerServer,
) -> None:
    out = subprocess.run(
        [
            str(postgres_bin_dir() / "psql"),
            "-X",
            "-At",
            "-d",
            verified.dsn,
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert out.stdout.strip() == "t", "PgBouncer's server connection is TLS"


@pytest.mark.parametrize("wrong", ["ca", "host"])
def test_pgbouncer_refuses_a_wrong_ca_or_host(
    postgres: PostgresServer,
    postgres_tls: ServerTls,
    other_ca: ServerTls,
    tmp_path: Path,
    stack_on: Any,
    wrong: str,
) -> None:
    host = "localhost" if wrong == "host" else "127.0.0.1"
    ca = other_ca.ca_cert if wrong == "ca" else postgres_tls.ca_cert
    bouncer = _bouncer(
        postgres, tmp_path, stack_on=stack_on, host=host, ca=ca, name=f"wrong-{wrong}"
    )
    try:
        with pytest.raises(NotReady):
            bouncer.start(timeout=5)
        log = bouncer.log_path.read_text()
        assert "certificate" in log, log[-2000:]
    finally:
        bouncer.cleanup()


async def test_preflight_accepts_the_right_ca_and_host(
    postgres: PostgresServer, postgres_tls: ServerTls
) -> None:
    failure = await database.tls_failure(
        "127.0.0.1",
        postgres.port,
        mode="verify-full",
        ca_pem=postgres_tls.ca_cert.read_text(),
        what="PostgreSQL",
        within=3,
    )
    assert failure is None


async def test_preflight_names_a_certificate_the_ca_does_not_trust(
    postgres: PostgresServer, other_ca: ServerTls
) -> None:
    failure = await database.tls_failure(
        "127.0.0.1",
        postgres.port,
        mode="verify-full",
        ca_pem=other_ca.ca_cert.read_text(),
        what="PostgreSQL at 127.0.0.1",
        within=3,
    )
    assert failure is not None
    assert failure.reason == "DatabaseCertificateUntrusted"
    assert "does not trust" in failure.message and "spec.pgbouncer.tls.ca" in failure.message


async def test_preflight_names_a_certificate_for_another_host(
    postgres: PostgresServer, postgres_tls: ServerTls
) -> None:
    failure = await database.tls_failure(
        "localhost",
        postgres.port,
        mode="verify-full",
        ca_pem=postgres_tls.ca_cert.read_text(),
        what="PostgreSQL at localhost",
        within=3,
    )
    assert failure is not None
    assert failure.reason == "DatabaseHostMismatch"
    assert "not valid for the host name 'localhost'" in failure.message
    # verify-ca checks the chain only, so the same server passes.
    assert (
        await database.tls_failure(
            "localhost",
            postgres.port,
            mode="verify-ca",
            ca_pem=postgres_tls.ca_cert.read_text(),
            what="PostgreSQL",
            within=3,
        )
        is None
    )


@pytest.fixture(scope="module")
def plain_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL that serves no TLS at all."""
    server = start_postgres(base_dir=tmp_path_factory.mktemp("plain-postgres"))
    yield server
    server.cleanup()


async def test_preflight_names_a_server_without_tls_when_tls_is_required(
    plain_postgres: PostgresServer,
) -> None:
    failure = await database.tls_failure(
        "127.0.0.1", plain_postgres.port, mode="require", ca_pem=None, what="PostgreSQL", within=3
    )
    assert failure is not None and failure.reason == "DatabaseTLSRefused"
    assert "does not serve TLS" in failure.message
    assert (
        await database.tls_failure(
            "127.0.0.1",
            plain_postgres.port,
            mode="prefer",
            ca_pem=None,
            what="PostgreSQL",
            within=3,
        )
        is None
    )
