"""Creating a stack creates every child, owned by the stack, in a restricted namespace."""

from __future__ import annotations

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    apply_ok,
    condition,
    create_secret,
    events,
    get_stack,
    is_ready,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e

CHILD_KINDS = [
    ("apps/v1", "Deployment", "list_namespaced_deployment"),
    ("apps/v1", "StatefulSet", "list_namespaced_stateful_set"),
]


def _restricted(core: client.CoreV1Api, namespace: str) -> None:
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )


def _owned_by(obj: object, uid: str) -> bool:
    refs = obj.metadata.owner_references or []  # type: ignore[attr-defined]
    return any(r.uid == uid and r.controller for r in refs)


def test_managed_stack_children_exist_and_are_owned(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    policy, net = client.PolicyV1Api(api_client), client.NetworkingV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    _restricted(core, namespace)
    create_secret(core, namespace, postgres.password)
    apply_ok(
        control_plane, stack_manifest("shop", namespace, postgres=postgres, managed_redis=True)
    )

    uid = get_stack(custom, namespace, "shop")["metadata"]["uid"]
    deployments = wait_for(
        lambda: (
            len(apps.list_namespaced_deployment(namespace).items) == 3
            and apps.list_namespaced_deployment(namespace).items
        ),
        timeout=60,
        what="three Deployments",
    )
    assert sorted(d.metadata.name for d in deployments) == [
        "shop-api",
        "shop-pgbouncer",
        "shop-workers",
    ]
    statefulsets = apps.list_namespaced_stateful_set(namespace).items
    assert [s.metadata.name for s in statefulsets] == ["shop-redis"]
    owned = [
        *deployments,
        *statefulsets,
        *[s for s in core.list_namespaced_service(namespace).items],
        *core.list_namespaced_config_map(namespace, label_selector="retention.dev/stack").items,
        *policy.list_namespaced_pod_disruption_budget(namespace).items,
        *net.list_namespaced_network_policy(namespace).items,
    ]
    assert len(owned) >= 3 + 1 + 4 + 2 + 2 + 2
    for obj in owned:
        assert _owned_by(obj, uid), f"{obj.kind} {obj.metadata.name} has no owner reference"
    auth = core.read_namespaced_secret("shop-redis-auth", namespace)
    assert _owned_by(auth, uid)

    # Pods pass Pod Security "restricted": the ReplicaSets create them and KWOK runs them.
    wait_for(
        lambda: (
            len(
                [
                    p
                    for p in core.list_namespaced_pod(
                        namespace, label_selector="retention.dev/stack=shop"
                    ).items
                    if p.status.phase == "Running"
                ]
            )
            >= 2 + 1 + 1 + 6
        ),
        timeout=90,
        what="API, worker, PgBouncer and Redis pods Running",
    )
    # KWOK pods run no process, so the managed Redis never forms: status says so.
    stack = wait_for(
        lambda: (
            (s := get_stack(custom, namespace, "shop"))
            and "Redis cluster to form"
            in (s.get("status", {}).get("components", {}).get("redis", {}).get("message") or "")
            and s
        ),
        timeout=60,
        what="status to say the Redis cluster is forming",
    )
    ready = condition(stack, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert condition(stack, "Reconciling")["status"] == "True"  # type: ignore[index]
    assert not is_ready(stack)
    # Every child as the API server stored it (the StatefulSet's claim templates
    # defaulted, quantities rewritten) matches what the operator applied.
    corrected = [e.message for e in events(core, namespace, reason="DriftCorrected")]
    assert corrected == [], f"untouched children were 'put back': {corrected}"


def test_external_redis_stack_becomes_ready(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    _restricted(core, namespace)
    create_secret(core, namespace, postgres.password)
    apply_ok(
        control_plane, stack_manifest("ext", namespace, postgres=postgres, redis=redis_standalone)
    )
    stack = wait_for(
        lambda: (s := get_stack(custom, namespace, "ext")) and is_ready(s) and s,
        timeout=90,
        what="stack Ready",
    )
    status = stack["status"]
    assert status["apiReplicas"] == 2
    assert status["workerReplicas"] == 1
    assert condition(stack, "Stalled")["status"] == "False"  # type: ignore[index]
    assert condition(stack, "Reconciling")["status"] == "False"  # type: ignore[index]
