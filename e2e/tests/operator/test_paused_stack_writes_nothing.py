"""``spec.paused`` stops every write to children and says so in status."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    apply_ok,
    condition,
    get_stack,
    image,
    ready_stack,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_paused_stack_keeps_children_and_reports_paused(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    _core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    manifest = stack_manifest("held", namespace, postgres=postgres, redis=redis_standalone)
    ready_stack(control_plane, api_client, manifest, password=postgres.password)

    paused = copy.deepcopy(manifest)
    paused["spec"]["paused"] = True
    paused["spec"]["api"]["image"] = "example.invalid/workloads:7"
    apply_ok(control_plane, paused)
    stack = wait_for(
        lambda: (
            (s := get_stack(custom, namespace, "held"))
            and (condition(s, "Reconciling") or {}).get("reason") == "Paused"
            and s
        ),
        timeout=60,
        what="status to say Paused",
    )
    assert stack["status"]["observedGeneration"] == stack["metadata"]["generation"]
    assert image(apps, namespace, "held-api") == "example.invalid/workloads:1"
