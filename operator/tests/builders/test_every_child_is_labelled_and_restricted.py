"""Every object carries the stack's labels; every pod passes Pod Security "restricted"."""

from __future__ import annotations

from typing import Any

import pytest

from retention_operator import names
from retention_operator.builders import api, monitoring, networkpolicy, pgbouncer, redis, workers
from retention_operator.model import RetentionStack


def _all(stack: RetentionStack) -> list[dict[str, Any]]:
    return [
        api.build_api_deployment(stack),
        api.build_api_service(stack),
        workers.build_workers_deployment(stack),
        redis.build_redis_statefulset(stack),
        redis.build_redis_config_map(stack),
        redis.build_redis_auth_secret(stack, password="pw"),  # noqa: S106
        redis.build_redis_service(stack),
        redis.build_redis_headless_service(stack),
        redis.build_redis_pdb(stack),
        pgbouncer.build_pgbouncer_deployment(stack),
        pgbouncer.build_pgbouncer_config_map(stack),
        pgbouncer.build_pgbouncer_service(stack),
        pgbouncer.build_pgbouncer_pdb(stack),
        networkpolicy.build_redis_network_policy(stack),
        networkpolicy.build_pgbouncer_network_policy(stack),
        monitoring.build_pod_monitor(stack),
    ]


def test_labels_on_every_object_and_pod(stack: RetentionStack) -> None:
    for obj in _all(stack):
        for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata")):
            if meta is None:
                continue
            assert meta["labels"][names.LABEL_STACK] == "demo", obj["kind"]
            assert meta["labels"][names.LABEL_INSTANCE] == "demo"
            assert meta["labels"][names.LABEL_PART_OF] == names.PART_OF
            assert meta["labels"][names.LABEL_MANAGED_BY] == names.MANAGED_BY
            assert meta["labels"][names.LABEL_COMPONENT] in {
                names.COMPONENT_API,
                names.COMPONENT_WORKERS,
                names.COMPONENT_REDIS,
                names.COMPONENT_PGBOUNCER,
                names.COMPONENT_MONITORING,
            }
        assert obj["metadata"]["namespace"] == "ns"


def _pod_specs(stack: RetentionStack) -> list[dict[str, Any]]:
    return [
        obj["spec"]["template"]["spec"] for obj in _all(stack) if "template" in obj.get("spec", {})
    ]


def test_four_pod_templates(stack: RetentionStack) -> None:
    assert len(_pod_specs(stack)) == 4


@pytest.mark.parametrize("index", range(4))
def test_pods_pass_restricted(stack: RetentionStack, index: int) -> None:
    pod = _pod_specs(stack)[index]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] > 0
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC")), (
        "no host namespaces"
    )
    assert all("hostPath" not in volume for volume in pod.get("volumes", []))
