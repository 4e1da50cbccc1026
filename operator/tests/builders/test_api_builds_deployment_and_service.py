from __future__ import annotations

from typing import Any

import retention_contract as contract
from retention_operator import names
from retention_operator.builders.api import build_api_deployment, build_api_service
from retention_operator.model import RetentionStack

from .conftest import MakeStack


def _env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry for entry in container["env"]}


def test_deployment_key_fields(stack: RetentionStack) -> None:
    deployment = build_api_deployment(stack)
    assert deployment["metadata"]["name"] == "demo-api"
    assert deployment["metadata"]["namespace"] == "ns"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"] == {
        names.LABEL_STACK: "demo",
        names.LABEL_COMPONENT: names.COMPONENT_API,
    }
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "app:1"
    assert container["command"] == ["retention-api"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_replicas_left_out_for_the_autoscaler(stack: RetentionStack) -> None:
    assert "replicas" not in build_api_deployment(stack, include_replicas=False)["spec"]


def test_connection_settings_come_from_the_contract(stack: RetentionStack) -> None:
    env = _env(build_api_deployment(stack))
    assert env[contract.ENV_REDIS_URL]["value"] == "redis://demo-redis.ns.svc:6379/0"
    assert env[contract.ENV_REDIS_CLUSTER]["value"] == "true"
    assert env[contract.ENV_REDIS_PASSWORD]["valueFrom"] == {
        "secretKeyRef": {"name": "demo-redis-auth", "key": "password"}
    }
    assert env[contract.ENV_DATABASE_URL]["value"] == (
        "postgresql://app_user@demo-pgbouncer.ns.svc:6432/app"
    )
    assert env[contract.ENV_DATABASE_PASSWORD]["valueFrom"] == {
        "secretKeyRef": {"name": "pg-creds", "key": "password"}
    }
    assert env[contract.ENV_DB_STATEMENT_CACHE_SIZE]["value"] == "0"
    assert env[contract.ENV_QUEUE_STREAM]["value"] == "{ns/demo}:jobs"
    assert env[contract.ENV_QUEUE_GROUP]["value"] == "workers"
    assert env[contract.ENV_DEADLETTER_STREAM]["value"] == "{ns/demo}:jobs:dead"
    assert env[contract.ENV_STACK_NAME]["value"] == "demo"
    assert env[contract.ENV_STACK_NAMESPACE]["value"] == "ns"
    assert env[contract.ENV_HTTP_PORT]["value"] == "8080"
    for entry in env.values():
        # A password is a Secret reference; the _FILE variable is only a path.
        if "PASSWORD" in entry["name"] and not entry["name"].endswith("_FILE"):
            assert "value" not in entry
    assert env[contract.ENV_DATABASE_PASSWORD_FILE]["value"].startswith("/var/run/")


def test_external_redis_and_user_env(make_stack: MakeStack) -> None:
    stack = make_stack(
        api={
            "image": "app:1",
            "env": [
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": contract.ENV_REDIS_URL, "value": "redis://elsewhere"},
            ],
        },
        redis={
            "external": {
                "url": "rediss://cache:6380/0",
                "passwordSecretRef": {"name": "cache", "key": "pw"},
            }
        },
    )
    env = _env(build_api_deployment(stack))
    assert env[contract.ENV_REDIS_URL]["value"] == "rediss://cache:6380/0"
    assert env[contract.ENV_REDIS_CLUSTER]["value"] == "false"
    assert env[contract.ENV_REDIS_PASSWORD]["valueFrom"]["secretKeyRef"] == {
        "name": "cache",
        "key": "pw",
    }
    assert env["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "debug"}


def test_service(stack: RetentionStack) -> None:
    service = build_api_service(stack)
    assert service["metadata"]["name"] == "demo-api"
    assert service["spec"]["selector"] == {
        names.LABEL_STACK: "demo",
        names.LABEL_COMPONENT: names.COMPONENT_API,
    }
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
