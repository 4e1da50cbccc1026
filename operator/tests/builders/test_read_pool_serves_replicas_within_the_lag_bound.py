"""The read pool: its own objects (-ro), the replicas in the pool, membership without a rollout."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import retention_contract as contract
from retention_operator import names
from retention_operator.builders import env, networkpolicy, pgbouncer
from retention_operator.model import RetentionStack

from .conftest import MINIMAL_SPEC, MakeStack

REPLICAS = [{"host": "r1.db.example", "port": 5433}, {"host": "r2.db.example", "port": 5433}]


def _stack(make_stack: MakeStack, in_pool: list[str]) -> RetentionStack:
    base = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "readReplicas": REPLICAS})
    body = base.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["status"] = {
        "pgbouncer": {
            "readReplicas": [
                {"host": r["host"], "port": r["port"], "inReadPool": r["host"] in in_pool}
                for r in REPLICAS
            ]
        }
    }
    return RetentionStack.model_validate(body)


def _database_line(config_map: dict[str, Any]) -> str:
    ini: str = config_map["data"]["pgbouncer.ini"]
    return ini.splitlines()[1]


def test_no_replicas_means_no_read_pool(stack: RetentionStack) -> None:
    assert pgbouncer.build_read_pool(stack) == []
    names_ = [e["name"] for e in env.database_env(stack)]
    assert contract.ENV_DATABASE_READ_URL not in names_


def test_read_pool_has_its_own_objects_and_url(make_stack: MakeStack) -> None:
    stack = _stack(make_stack, in_pool=["r1.db.example"])
    kinds = {(m["kind"], m["metadata"]["name"]) for m in pgbouncer.build_read_pool(stack)}
    assert kinds == {
        ("ConfigMap", "demo-pgbouncer-ro-config"),
        ("Deployment", "demo-pgbouncer-ro"),
        ("Service", "demo-pgbouncer-ro"),
        ("PodDisruptionBudget", "demo-pgbouncer-ro"),
    }
    service = pgbouncer.build_pgbouncer_ro_service(stack)
    assert service["spec"]["selector"][names.LABEL_COMPONENT] == "pgbouncer-ro"
    primary = pgbouncer.build_pgbouncer_service(stack)
    assert primary["spec"]["selector"][names.LABEL_COMPONENT] == "pgbouncer"
    urls = {e["name"]: e.get("value") for e in env.database_env(stack)}
    assert urls[contract.ENV_DATABASE_READ_URL] == (
        "postgresql://app_user@demo-pgbouncer-ro.ns.svc:6432/app"
    )
    assert urls[contract.ENV_DATABASE_URL] == "postgresql://app_user@demo-pgbouncer.ns.svc:6432/app"
    policy = networkpolicy.build_pgbouncer_ro_network_policy(stack)
    assert policy["spec"]["podSelector"]["matchLabels"][names.LABEL_COMPONENT] == "pgbouncer-ro"


def test_only_replicas_in_the_pool_serve_reads(make_stack: MakeStack) -> None:
    both = _stack(make_stack, in_pool=["r1.db.example", "r2.db.example"])
    assert _database_line(pgbouncer.build_pgbouncer_ro_config_map(both)) == (
        "app = host=r1.db.example,r2.db.example port=5433 dbname=app"
    )
    one = _stack(make_stack, in_pool=["r2.db.example"])
    assert _database_line(pgbouncer.build_pgbouncer_ro_config_map(one)) == (
        "app = host=r2.db.example port=5433 dbname=app"
    )


def test_no_replica_in_the_pool_reads_from_the_primary(make_stack: MakeStack) -> None:
    none = _stack(make_stack, in_pool=[])
    assert _database_line(pgbouncer.build_pgbouncer_ro_config_map(none)) == (
        "app = host=pg.db.svc port=5432 dbname=app"
    )
    never_measured = make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "readReplicas": REPLICAS})
    assert pgbouncer.replicas_in_pool(never_measured) == []


def test_membership_reloads_and_does_not_roll_the_read_pool(make_stack: MakeStack) -> None:
    key = names.ANNOTATION_CONFIG_HASH
    hashes = {
        pgbouncer.build_pgbouncer_ro_deployment(_stack(make_stack, in_pool=pool))["spec"][
            "template"
        ]["metadata"]["annotations"][key]
        for pool in ([], ["r1.db.example"], ["r1.db.example", "r2.db.example"])
    }
    assert len(hashes) == 1


def test_replicas_must_share_one_port(make_stack: MakeStack) -> None:
    mixed = [{"host": "r1", "port": 5432}, {"host": "r2", "port": 5433}]
    with pytest.raises(ValidationError, match="must all use one port"):
        make_stack(pgbouncer={**MINIMAL_SPEC["pgbouncer"], "readReplicas": mixed})
