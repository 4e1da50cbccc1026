"""TLS towards PostgreSQL: the sslmode the spec implies, the CA mounted, the listener's TLS."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import retention_contract as contract
from retention_operator.builders import database, env, pgbouncer

from .conftest import MINIMAL_SPEC, MakeStack


def _ini(make_stack: MakeStack, **changes: Any) -> str:
    stack = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], **changes})
    text: str = pgbouncer.render_pgbouncer_ini(stack)
    return text


def _db(host: str) -> dict[str, str]:
    return {"host": host, "name": "app", "user": "app_user"}


@pytest.mark.parametrize(
    ("host", "tls", "mode"),
    [
        ("pg.db.svc", {}, "prefer"),
        ("pg", {}, "prefer"),
        ("pg.db.svc.cluster.local", {}, "prefer"),
        ("db.example.com", {}, "require"),
        ("10.1.2.3", {}, "require"),
        (
            "db.example.com",
            {"ca": {"configMapKeyRef": {"name": "ca", "key": "ca.crt"}}},
            "verify-full",
        ),
        ("pg.db.svc", {"sslmode": "disable"}, "disable"),
    ],
)
def test_default_sslmode_depends_on_the_ca_and_the_host(
    make_stack: MakeStack, host: str, tls: dict[str, Any], mode: str
) -> None:
    ini = _ini(make_stack, database=_db(host), tls=tls)
    assert f"server_tls_sslmode = {mode}" in ini
    stack = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "database": _db(host), "tls": tls})
    assert database.server_sslmode(stack.spec.pgbouncer) == mode


def test_the_ca_is_mounted_from_its_secret_and_named_in_the_ini(make_stack: MakeStack) -> None:
    tls = {"sslmode": "verify-full", "ca": {"secretKeyRef": {"name": "db-ca", "key": "root.pem"}}}
    stack = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "tls": tls})
    assert "server_tls_ca_file = /etc/pgbouncer/ca/ca.crt" in pgbouncer.render_pgbouncer_ini(stack)
    pod = pgbouncer.build_pgbouncer_deployment(stack)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ca"]["secret"] == {
        "secretName": "db-ca",
        "items": [{"key": "root.pem", "path": "ca.crt"}],
    }
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["ca"] == "/etc/pgbouncer/ca"


def test_verify_modes_need_a_ca(make_stack: MakeStack) -> None:
    with pytest.raises(ValidationError, match=r"need tls\.ca"):
        make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "tls": {"sslmode": "verify-full"}})


def test_client_tls_on_the_listener_and_in_the_workloads_url(make_stack: MakeStack) -> None:
    tls = {"client": {"secretName": "pgbouncer-tls"}}
    stack = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "tls": tls})
    ini = pgbouncer.render_pgbouncer_ini(stack)
    assert "client_tls_sslmode = require" in ini
    assert "client_tls_cert_file = /etc/pgbouncer/client-tls/tls.crt" in ini
    urls = {e["name"]: e.get("value") for e in env.database_env(stack)}
    assert urls[contract.ENV_DATABASE_URL].endswith("/app?sslmode=require")
