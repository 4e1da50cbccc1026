"""A missing Secret stalls the stack, warns, changes no child, and heals without an edit."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    SECRET,
    apply_ok,
    condition,
    create_secret,
    generations,
    get_stack,
    image,
    is_ready,
    ready_stack,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _stalled(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, str] | None:
    cond = condition(get_stack(custom, namespace, name), "Stalled")
    return cond if cond and cond["status"] == "True" else None


def _warnings(core: client.CoreV1Api, namespace: str, reason: str) -> list[client.CoreV1Event]:
    return [
        e
        for e in core.list_namespaced_event(namespace).items
        if e.reason == reason and e.type == "Warning" and e.involved_object.kind == "RetentionStack"
    ]


def test_new_stack_without_secret_stalls_then_becomes_ready_when_it_appears(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    apply_ok(
        control_plane,
        stack_manifest("lonely", namespace, postgres=postgres, redis=redis_standalone),
    )

    stalled = wait_for(lambda: _stalled(custom, namespace, "lonely"), timeout=60, what="Stalled")
    assert stalled["reason"] == "SecretNotFound"
    assert f"Secret {namespace}/{SECRET}" in stalled["message"]
    assert "spec.pgbouncer.credentialsSecretRef" in stalled["message"]
    assert condition(get_stack(custom, namespace, "lonely"), "Ready")["status"] == "False"  # type: ignore[index]
    events = wait_for(
        lambda: _warnings(core, namespace, "SecretNotFound"), timeout=30, what="event"
    )
    assert postgres.password not in events[0].message
    assert not apps.list_namespaced_deployment(namespace).items

    create_secret(core, namespace, postgres.password)
    stack = wait_for(
        lambda: (s := get_stack(custom, namespace, "lonely")) and is_ready(s) and s,
        timeout=120,
        what="Ready after the Secret appeared, without an edit",
    )
    assert stack["metadata"]["generation"] == 1
    assert condition(stack, "Stalled")["status"] == "False"  # type: ignore[index]


def test_secret_deleted_under_a_running_stack_leaves_children_unchanged(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    manifest = stack_manifest("steady", namespace, postgres=postgres, redis=redis_standalone)
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    before = generations(apps, namespace)

    core.delete_namespaced_secret(SECRET, namespace)
    changed = copy.deepcopy(manifest)
    changed["spec"]["api"]["image"] = "example.invalid/workloads:9"
    apply_ok(control_plane, changed)
    wait_for(lambda: _stalled(custom, namespace, "steady"), timeout=60, what="Stalled")
    after = generations(apps, namespace)
    assert after == before, "a stalled stack must leave its children as they are"
    assert image(apps, namespace, "steady-api") == "example.invalid/workloads:1"

    create_secret(core, namespace, postgres.password)
    wait_for(
        lambda: image(apps, namespace, "steady-api") == "example.invalid/workloads:9",
        timeout=90,
        what="the held-back change to land once the Secret is back",
    )
