"""The PgBouncer alert fires on what a real exporter says of a real PgBouncer whose pool is full.

PgBouncer (Debian's) runs under the operator's start script with the stack's own
pgbouncer.ini (one server connection, ``stats_users`` for the exporter), in front
of a real PostgreSQL; the exporter (the pgbouncer-exporter image's program,
``harness.pgbouncer_exporter``) runs with the config the operator renders, its
password read by libpq from the passfile the start script wrote. One client holds
the only server connection in a transaction, a second waits for it; the exporter
is scraped after each step and the samples, one scrape a minute in promtool's
time, feed ``promtool test rules`` over the chart's rules. Only the time scale is
synthetic. ``namespace``, ``stack`` and ``pod`` are what the stack's PodMonitor
attaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from harness.exporter_samples import Samples, input_series, scrape
from harness.pgbouncer_exporter import exporter_command
from harness.procs import Proc, start, wait_until
from harness.service_base import free_ports
from harness.services import PgBouncerServer, PostgresServer, start_pgbouncer
from retention_operator.builders import pgbouncer as pgbouncer_builder
from retention_operator.model import RetentionStack

from .conftest import RuleTests

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

Manifest = dict[str, Any]
QUIET, BUSY = 6, 10
ALERT = "RetentionPgBouncerClientsWaiting"
WAITING = "pgbouncer_pools_client_waiting_connections"
POD = "svc-pgbouncer-7d9f-abcde"
PASSFILE_IN_POD = f"{pgbouncer_builder.AUTH_DIR}/{pgbouncer_builder.PASSFILE}"


@pytest.fixture
def stack(postgres: PostgresServer) -> RetentionStack:
    """Stack ``ns/svc`` on ``postgres``: one server connection, the exporter on."""
    database = {"host": postgres.host, "port": postgres.port, "name": postgres.dbname}
    pool = {
        "database": {**database, "user": postgres.user},
        "credentialsSecretRef": {"name": "db"},
        "defaultPoolSize": 1,
        "exporter": {"image": "pgbouncer-exporter:test"},
    }
    return RetentionStack.model_validate(
        {
            "apiVersion": "retention.dev/v1alpha1",
            "kind": "RetentionStack",
            "metadata": {"name": "svc", "namespace": "ns", "uid": "u"},
            "spec": {
                "api": {"image": "app:1"},
                "workers": {},
                "redis": {"external": {"url": "redis://127.0.0.1:6379"}},
                "pgbouncer": pool,
            },
        }
    )


@pytest.fixture
def bouncer(
    postgres: PostgresServer, stack: RetentionStack, tmp_path: Path
) -> Iterator[PgBouncerServer]:
    server = start_pgbouncer(
        postgres,
        base_dir=tmp_path,
        rendered_ini=pgbouncer_builder.render_pgbouncer_ini(stack),
        run_script=pgbouncer_builder.RUN_SCRIPT,
        name="pgbouncer-exported",
    )
    yield server
    server.cleanup()


@pytest.fixture
def exporter(bouncer: PgBouncerServer, stack: RetentionStack) -> Iterator[tuple[int, Proc]]:
    """The exporter with the operator's config, aimed at this PgBouncer and its passfile."""
    config = yaml.safe_load(pgbouncer_builder.render_exporter_config(stack))
    (port,) = free_ports(1)
    config["exporter_host"], config["exporter_port"] = "127.0.0.1", port
    [target] = config["pgbouncers"]
    target["dsn"] = (
        target["dsn"]
        .replace("127.0.0.1:6432", f"{bouncer.host}:{bouncer.port}")
        .replace(
            f"{pgbouncer_builder.AUTH_DIR}/{pgbouncer_builder.PASSFILE}", str(bouncer.passfile_path)
        )
    )
    path = bouncer.log_dir / "exporter.yml"
    path.write_text(yaml.safe_dump(config))
    # As the test's user (root may read the passfile PgBouncer's user owns, 0600).
    argv = [*exporter_command(), "--config", str(path)]
    proc = start("pgbouncer-exporter", argv, log_dir=bouncer.log_dir)
    try:
        wait_until(
            lambda: scrape(port).get(("pgbouncer_up", ())) == 1.0,
            what="pgbouncer_up",
            timeout=30,
            proc=proc,
        )
        yield port, proc
    finally:
        proc.stop()


async def _record(port: int, steps: int) -> list[Samples]:
    out = []
    for _ in range(steps):
        await asyncio.sleep(0.3)
        out.append(await asyncio.to_thread(scrape, port))
    return out


async def test_a_client_waiting_for_the_full_pool_alerts_for_its_pod(
    bouncer: PgBouncerServer,
    exporter: tuple[int, Proc],
    promtool_test_rules: RuleTests,
) -> None:
    port, proc = exporter
    dsn = {"host": bouncer.host, "port": bouncer.port, "user": bouncer.user}
    dsn |= {"password": bouncer.password, "database": bouncer.dbname, "statement_cache_size": 0}
    holder = await asyncpg.connect(**dsn)
    waiter = await asyncpg.connect(**dsn)
    try:
        quiet = await _record(port, QUIET)
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1")  # the pool's one server connection is now held
        waiting = asyncio.create_task(waiter.fetchval("SELECT 2"))
        busy = await _record(port, BUSY)
        assert not waiting.done(), "the second client got a server connection"
        await holding.rollback()
        assert await asyncio.wait_for(waiting, 10) == 2
    finally:
        await holder.close()
        await waiter.close()
    samples = quiet + busy

    key = (("database", bouncer.dbname), ("user", bouncer.user))
    waiting_values = [s[("pgbouncer_pools_client_waiting_connections", key)] for s in samples]
    assert waiting_values[:QUIET] == [0.0] * QUIET and waiting_values[-1] == 1.0, waiting_values
    assert all(s[("pgbouncer_up", ())] == 1.0 for s in samples)
    # The dashboard's other series, as this exporter names it: the one server connection.
    database = (("backend_database", bouncer.dbname), ("database", bouncer.dbname))
    assert samples[-1][("pgbouncer_databases_database_current_connections", database)] == 1.0
    assert bouncer.password not in proc.log_path.read_text()

    labels = {"namespace": "ns", "stack": "svc", "pod": POD, "container": "exporter"}
    admin = (("database", "pgbouncer"), ("user", "pgbouncer"))
    series = [
        input_series(
            "pgbouncer_pools_client_waiting_connections",
            {**labels, "database": bouncer.dbname, "user": bouncer.user},
            waiting_values,
        ),
        # The admin console's pool: never alerts, whatever it shows.
        input_series(
            "pgbouncer_pools_client_waiting_connections",
            {**labels, "database": "pgbouncer", "user": "pgbouncer"},
            [
                s.get(("pgbouncer_pools_client_waiting_connections", admin), 0.0) + 1
                for s in samples
            ],
        ),
    ]
    end = f"{len(samples) - 1}m"
    fired = {"severity": "warning", "namespace": "ns", "stack": "svc", "pod": POD}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{QUIET - 1}m", "alertname": ALERT, "exp_alerts": []},
                {"eval_time": f"{QUIET + 3}m", "alertname": ALERT, "exp_alerts": []},
                {"eval_time": end, "alertname": ALERT, "exp_alerts": [{"exp_labels": fired}]},
            ],
        }
    ]
    out = await asyncio.to_thread(promtool_test_rules, tests)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_rotated_password_reaches_the_exporter_through_the_passfile(
    bouncer: PgBouncerServer, exporter: tuple[int, Proc]
) -> None:
    """The start script renders the passfile again with the auth file: the exporter's next
    login uses the new password, colons and backslashes included (libpq's escaping)."""
    port, proc = exporter
    rotated = "new:pa\\ss:w0rd"
    bouncer.set_password(rotated)
    wait_until(
        lambda: (
            rotated.replace("\\", "\\\\").replace(":", "\\:") in bouncer.passfile_path.read_text()
        ),
        what="the passfile rendered again",
        timeout=10,
    )
    assert scrape(port)[("pgbouncer_up", ())] == 1.0
    bouncer.passfile_path.write_text("*:*:pgbouncer:nobody:wrong\n")  # a stale passfile fails
    wait_until(lambda: scrape(port)[("pgbouncer_up", ())] == 0.0, what="pgbouncer_up 0", timeout=10)
    assert rotated not in proc.log_path.read_text()
