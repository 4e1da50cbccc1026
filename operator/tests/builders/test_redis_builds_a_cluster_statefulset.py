from __future__ import annotations

import json

import pytest

from retention_operator.builders import redis
from retention_operator.model import RetentionStack

from .conftest import MakeStack

EXTERNAL = {"external": {"url": "redis://r:6379"}}


def test_statefulset_size_volumes_and_retention(stack: RetentionStack) -> None:
    sts = redis.build_redis_statefulset(stack)
    assert sts["metadata"]["name"] == "demo-redis"
    assert sts["spec"]["replicas"] == 6, "3 shards * (1 primary + 1 replica)"
    assert sts["spec"]["serviceName"] == "demo-redis-headless"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    assert "storageClassName" not in claim["spec"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["redis-server", "/etc/redis/conf/redis.conf"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/data",
        "/etc/redis/conf",
        "/etc/redis/auth",
    }


def test_volumes_deleted_with_the_stack_when_asked(make_stack: MakeStack) -> None:
    stack = make_stack(
        redis={
            "managed": {
                "shards": 4,
                "replicasPerShard": 2,
                "retainOnDelete": False,
                "storage": {"size": "5Gi", "storageClassName": "fast"},
            }
        }
    )
    sts = redis.build_redis_statefulset(stack)
    assert sts["spec"]["replicas"] == 12
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"


def test_config_is_cluster_mode_without_secrets(stack: RetentionStack) -> None:
    conf = redis.build_redis_config_map(stack)["data"]["redis.conf"]
    assert "cluster-enabled yes" in conf
    assert "include /etc/redis/auth/auth.conf" in conf
    assert "requirepass" not in conf


def test_auth_secret_holds_the_given_password(stack: RetentionStack) -> None:
    secret = redis.build_redis_auth_secret(stack, password='pa"ss')  # noqa: S106
    assert secret["metadata"]["name"] == "demo-redis-auth"
    assert secret["stringData"]["password"] == 'pa"ss'
    assert secret["stringData"]["auth.conf"] == 'requirepass "pa\\"ss"\nmasterauth "pa\\"ss"\n'
    with pytest.raises(ValueError, match="empty"):
        redis.build_redis_auth_secret(stack, password="")


def test_password_appears_only_in_the_secret(stack: RetentionStack) -> None:
    others = [
        redis.build_redis_statefulset(stack),
        redis.build_redis_config_map(stack),
        redis.build_redis_service(stack),
        redis.build_redis_headless_service(stack),
        redis.build_redis_pdb(stack),
    ]
    assert "s3cret-value" in json.dumps(
        redis.build_redis_auth_secret(stack, password="s3cret-value")  # noqa: S106
    )
    assert all("s3cret-value" not in json.dumps(obj) for obj in others)


def test_services_and_pdb(stack: RetentionStack) -> None:
    headless = redis.build_redis_headless_service(stack)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["spec"]["ports"]} == {6379, 16379}
    client = redis.build_redis_service(stack)
    assert client["metadata"]["name"] == "demo-redis"
    assert [p["port"] for p in client["spec"]["ports"]] == [6379]
    pdb = redis.build_redis_pdb(stack)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"


def test_external_redis_has_no_managed_objects(make_stack: MakeStack) -> None:
    stack = make_stack(redis=EXTERNAL)
    with pytest.raises(ValueError, match="external Redis"):
        redis.build_redis_statefulset(stack)
