from __future__ import annotations

import json

from retention_operator import names
from retention_operator.builders import pgbouncer
from retention_operator.model import RetentionStack

from .conftest import MINIMAL_SPEC, MakeStack


def test_ini_carries_database_and_pool_settings(stack: RetentionStack) -> None:
    ini = pgbouncer.build_pgbouncer_config_map(stack)["data"]["pgbouncer.ini"]
    assert "app = host=pg.db.svc port=5432 dbname=app" in ini
    assert "pool_mode = transaction" in ini
    assert "default_pool_size = 20" in ini
    assert "max_client_conn = 1000" in ini
    assert "listen_port = 6432" in ini
    assert "auth_file = /etc/pgbouncer/auth/userlist.txt" in ini


def test_credentials_come_from_the_secret_not_the_config(stack: RetentionStack) -> None:
    deployment = pgbouncer.build_pgbouncer_deployment(stack)
    pod = deployment["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["credentials"]["secret"]["secretName"] == "pg-creds"
    assert volumes["credentials"]["secret"]["items"] == [{"key": "password", "path": "password"}]
    assert volumes["auth"] == {"name": "auth", "emptyDir": {"medium": "Memory"}}
    (container,) = pod["containers"]
    env = {entry["name"]: entry["value"] for entry in container["env"]}
    assert env["PGBOUNCER_PASSWORD_FILE"] == "/etc/pgbouncer/credentials/password"
    assert "password" not in json.dumps(container["env"]).replace("PASSWORD_FILE", "").replace(
        "/credentials/password", ""
    )
    assert "password" not in json.dumps(pgbouncer.build_pgbouncer_config_map(stack)["data"])


def test_config_change_changes_the_pod_template_hash(make_stack: MakeStack) -> None:
    before = pgbouncer.build_pgbouncer_deployment(make_stack())
    changed = {**MINIMAL_SPEC["pgbouncer"], "defaultPoolSize": 40}
    after = pgbouncer.build_pgbouncer_deployment(make_stack(pgbouncer=changed))
    key = names.ANNOTATION_CONFIG_HASH
    hash_before = before["spec"]["template"]["metadata"]["annotations"][key]
    hash_after = after["spec"]["template"]["metadata"]["annotations"][key]
    assert hash_before != hash_after
    again = pgbouncer.build_pgbouncer_deployment(make_stack())
    assert again["spec"]["template"]["metadata"]["annotations"][key] == hash_before


def test_deployment_service_and_pdb(stack: RetentionStack) -> None:
    deployment = pgbouncer.build_pgbouncer_deployment(stack)
    assert deployment["metadata"]["name"] == "demo-pgbouncer"
    assert deployment["spec"]["replicas"] == 2
    service = pgbouncer.build_pgbouncer_service(stack)
    assert service["spec"]["ports"][0]["port"] == 6432
    assert pgbouncer.build_pgbouncer_pdb(stack)["spec"]["maxUnavailable"] == 1
