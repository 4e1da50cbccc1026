from __future__ import annotations

import retention_contract as contract
from retention_operator.builders.workers import build_workers_deployment
from retention_operator.model import RetentionStack

from .conftest import MakeStack


def test_deployment_key_fields(stack: RetentionStack) -> None:
    deployment = build_workers_deployment(stack)
    assert deployment["metadata"]["name"] == "demo-workers"
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "app:1", "defaults to the API's image"
    assert container["command"] == ["retention-worker"]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env[contract.ENV_METRICS_PORT]["value"] == "9090"
    assert env[contract.ENV_QUEUE_STREAM]["value"] == "{ns/demo}:jobs"
    assert env[contract.ENV_REDIS_PASSWORD]["valueFrom"]["secretKeyRef"]["name"] == (
        "demo-redis-auth"
    )
    assert contract.ENV_WORKER_CONCURRENCY not in env


def test_replicas_left_out_for_the_autoscaler(stack: RetentionStack) -> None:
    assert "replicas" not in build_workers_deployment(stack, include_replicas=False)["spec"]


def test_queue_image_concurrency_and_session_pooling(make_stack: MakeStack) -> None:
    stack = make_stack(
        workers={
            "image": "worker:2",
            "concurrency": 4,
            "queue": {"stream": "{shop}:orders", "group": "billing"},
        },
        pgbouncer={
            "database": {"host": "pg", "name": "app", "user": "app"},
            "credentialsSecretRef": {"name": "pg", "passwordKey": "pw"},
            "poolMode": "session",
        },
    )
    container = build_workers_deployment(stack)["spec"]["template"]["spec"]["containers"][0]
    env = {entry["name"]: entry for entry in container["env"]}
    assert container["image"] == "worker:2"
    assert env[contract.ENV_WORKER_CONCURRENCY]["value"] == "4"
    assert env[contract.ENV_QUEUE_STREAM]["value"] == "{shop}:orders"
    assert env[contract.ENV_QUEUE_GROUP]["value"] == "billing"
    assert env[contract.ENV_DEADLETTER_STREAM]["value"] == "{shop}:orders:dead"
    assert env[contract.ENV_DATABASE_PASSWORD]["valueFrom"]["secretKeyRef"]["key"] == "pw"
    assert env[contract.ENV_DB_STATEMENT_CACHE_SIZE]["value"] == "100"
