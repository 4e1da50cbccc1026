"""PgBouncer's exporter runs beside each PgBouncer when an image is given, never with a password.

Its config names this pod's PgBouncer and a libpq passfile that the PgBouncer
container renders beside the auth file; the database user may read the admin
console's SHOW commands (``stats_users``) only while the exporter runs. The read
pool's pods get the same sidecar.
"""

from __future__ import annotations

from typing import Any

import pytest

from retention_operator.builders import naming, networkpolicy, pgbouncer

from .conftest import MINIMAL_SPEC, MakeStack

IMAGE = "registry.local/pgbouncer-exporter:2.1.2"


def _with_exporter(make_stack: MakeStack, **more: Any) -> Any:
    return make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "exporter": {"image": IMAGE}, **more})


def _containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_without_an_image_nothing_changes(make_stack: MakeStack) -> None:
    stack = make_stack()
    assert set(_containers(pgbouncer.build_pgbouncer_deployment(stack))) == {"pgbouncer"}
    config = pgbouncer.build_pgbouncer_config_map(stack)["data"]
    assert set(config) == {"pgbouncer.ini"}
    assert "stats_users" not in config["pgbouncer.ini"]
    env = _containers(pgbouncer.build_pgbouncer_deployment(stack))["pgbouncer"]["env"]
    assert "PGBOUNCER_PASSFILE" not in {e["name"] for e in env}


@pytest.mark.parametrize(
    "build", [pgbouncer.build_pgbouncer_deployment, pgbouncer.build_pgbouncer_ro_deployment]
)
def test_the_exporter_reads_its_own_pool_with_the_passfile(
    make_stack: MakeStack, build: Any
) -> None:
    stack = _with_exporter(make_stack, readReplicas=[{"host": "replica.db"}])
    containers = _containers(build(stack))
    exporter = containers[naming.EXPORTER_CONTAINER]
    assert exporter["image"] == IMAGE and "command" not in exporter
    assert exporter["args"] == ["--config", "/etc/pgbouncer/config/exporter.yml"]
    assert exporter["ports"] == [
        {"name": naming.PGBOUNCER_EXPORTER_PORT_NAME, "containerPort": 9127, "protocol": "TCP"}
    ]
    assert {m["mountPath"]: m["readOnly"] for m in exporter["volumeMounts"]} == {
        "/etc/pgbouncer/config": True,
        "/etc/pgbouncer/auth": True,
    }
    assert "env" not in exporter
    env = {e["name"]: e.get("value") for e in containers["pgbouncer"]["env"]}
    assert env["PGBOUNCER_PASSFILE"] == "/etc/pgbouncer/auth/pgpass"


def test_the_config_names_the_local_pool_and_the_passfile_only(make_stack: MakeStack) -> None:
    stack = _with_exporter(make_stack)
    for config_map in (
        pgbouncer.build_pgbouncer_config_map(stack),
        pgbouncer.build_pgbouncer_ro_config_map(stack),
    ):
        data = config_map["data"]
        assert "stats_users = app_user" in data["pgbouncer.ini"]
        text = data["exporter.yml"]
        assert (
            '"postgresql://app_user@127.0.0.1:6432/pgbouncer'
            '?passfile=/etc/pgbouncer/auth/pgpass"' in text
        )
        assert "exporter_port: 9127" in text


def test_the_exporter_port_is_open_to_scrapes_on_both_pools(make_stack: MakeStack) -> None:
    stack = _with_exporter(make_stack)
    for build in (
        networkpolicy.build_pgbouncer_network_policy,
        networkpolicy.build_pgbouncer_ro_network_policy,
    ):
        assert {"ports": [{"protocol": "TCP", "port": 9127}]} in build(stack)["spec"]["ingress"]
    plain = networkpolicy.build_pgbouncer_network_policy(make_stack())["spec"]["ingress"]
    assert all("from" in rule for rule in plain)
