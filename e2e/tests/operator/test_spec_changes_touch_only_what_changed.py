"""Spec changes reach exactly the children they concern, and never the autoscaler's replicas."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    apply_ok,
    generations,
    image,
    ready_stack,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e
HASH = "retention.dev/config-hash"


def test_api_image_change_rolls_only_the_api(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    apps = client.AppsV1Api(api_client)
    manifest = stack_manifest("app", namespace, postgres=postgres, redis=redis_standalone)
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    before = generations(apps, namespace)
    changed = copy.deepcopy(manifest)
    changed["spec"]["api"]["image"] = "example.invalid/workloads:2"
    apply_ok(control_plane, changed)

    wait_for(
        lambda: image(apps, namespace, "app-api") == "example.invalid/workloads:2",
        timeout=60,
        what="the API Deployment to carry the new image",
    )
    after = generations(apps, namespace)
    assert after["app-api"] != before["app-api"]
    assert after["app-workers"] == before["app-workers"]
    assert after["app-pgbouncer"] == before["app-pgbouncer"]


def test_pgbouncer_setting_changes_config_hash_and_rolls_its_pods(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    manifest = stack_manifest("app", namespace, postgres=postgres, redis=redis_standalone)
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    deployment = apps.read_namespaced_deployment("app-pgbouncer", namespace)
    old_hash = deployment.spec.template.metadata.annotations[HASH]
    old_pods = {
        p.metadata.name
        for p in core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=pgbouncer"
        ).items
    }
    changed = copy.deepcopy(manifest)
    changed["spec"]["pgbouncer"]["defaultPoolSize"] = 7
    apply_ok(control_plane, changed)

    new_hash = wait_for(
        lambda: (
            (
                h := apps.read_namespaced_deployment(
                    "app-pgbouncer", namespace
                ).spec.template.metadata.annotations[HASH]
            )
            != old_hash
            and h
        ),
        timeout=60,
        what="a new config hash",
    )
    assert new_hash != old_hash
    config = core.read_namespaced_config_map("app-pgbouncer-config", namespace)
    assert "default_pool_size = 7" in "".join(config.data.values())

    def rolled() -> bool:
        pods = core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=pgbouncer"
        ).items
        names = {p.metadata.name for p in pods if p.status.phase == "Running"}
        return bool(names) and not (names & old_pods)

    wait_for(rolled, timeout=90, what="PgBouncer pods replaced")


def test_replicas_set_by_the_autoscaler_survive_a_spec_change(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    apps = client.AppsV1Api(api_client)
    manifest = stack_manifest("app", namespace, postgres=postgres, redis=redis_standalone)
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app-api", "namespace": namespace},
        "spec": {"replicas": 5},
    }
    apps.patch_namespaced_deployment(
        "app-api",
        namespace,
        patch,
        field_manager="retention-autoscaler",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    changed = copy.deepcopy(manifest)
    changed["spec"]["api"]["image"] = "example.invalid/workloads:3"
    changed["spec"]["api"]["minReplicas"] = 3
    apply_ok(control_plane, changed)
    wait_for(
        lambda: image(apps, namespace, "app-api") == "example.invalid/workloads:3",
        timeout=60,
        what="the new image",
    )
    deployment = apps.read_namespaced_deployment("app-api", namespace)
    assert deployment.spec.replicas == 5
    managers = {
        m.manager: m.fields_v1 for m in deployment.metadata.managed_fields if m.operation == "Apply"
    }
    assert "f:replicas" in str(managers["retention-autoscaler"])
    assert "f:replicas" not in str(managers["retention-operator"])
