"""Deleting a stack garbage-collects its children; Redis volumes follow retainOnDelete."""

from __future__ import annotations

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer
from harness.stacks import GROUP, PLURAL, VERSION, apply_ok, create_secret, stack_manifest, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("retain", [True, False], ids=["retain", "delete"])
def test_children_go_and_volumes_follow_retain_on_delete(
    retain: bool,
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    manifest = stack_manifest(
        "data", namespace, postgres=postgres, managed_redis=True, retain_on_delete=retain
    )
    apply_ok(control_plane, manifest)
    wait_for(
        lambda: len(core.list_namespaced_persistent_volume_claim(namespace).items) == 6,
        timeout=180,
        what="six Redis volumes claimed",
    )
    wait_for(
        lambda: len(apps.list_namespaced_deployment(namespace).items) == 3,
        timeout=120,
        what="Deployments",
    )

    if not retain:
        # The StatefulSet controller owns a claim only a sync after creating it (the
        # window docs/architecture.md states); the retention policy covers owned ones.
        wait_for(
            lambda: all(
                any(ref.kind == "StatefulSet" for ref in c.metadata.owner_references or [])
                for c in core.list_namespaced_persistent_volume_claim(namespace).items
            ),
            timeout=120,
            what="every claim owned by its StatefulSet",
        )

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "data")

    def children_gone() -> bool:
        return not (
            apps.list_namespaced_deployment(namespace).items
            or apps.list_namespaced_stateful_set(namespace).items
            or core.list_namespaced_service(namespace).items
            or core.list_namespaced_secret(namespace, label_selector="retention.dev/stack").items
        )

    # Garbage collection and KWOK's pod deletion are slow on a loaded 2-core machine.
    wait_for(children_gone, timeout=240, what="children garbage-collected")
    if retain:
        # Give the garbage collector time to do anything it would do to the claims.
        claims = wait_for(
            lambda: (
                len(core.list_namespaced_persistent_volume_claim(namespace).items) == 6
                and core.list_namespaced_persistent_volume_claim(namespace).items
            ),
            timeout=10,
            what="claims kept",
        )
        assert all(c.metadata.deletion_timestamp is None for c in claims)
    else:
        wait_for(
            lambda: (
                not [
                    c
                    for c in core.list_namespaced_persistent_volume_claim(namespace).items
                    if c.metadata.deletion_timestamp is None
                ]
            ),
            timeout=240,
            what="claims deleted with the stack",
        )
