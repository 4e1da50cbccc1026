"""With Prometheus Operator's CRDs installed, a new stack gets a PodMonitor of its own.

The PodMonitor CRD is the pinned release's own (from its Go module); the API
server validates the PodMonitor against it, so a field it does not know
would be refused or pruned. The operator needs none of Prometheus Operator's
other CRDs. The CRD is removed again after this module, so the other tests
see a cluster without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.prometheus_operator import install_crds, uninstall_crds
from harness.services import PostgresServer, RedisServer
from harness.stacks import ready_stack, stack_manifest, wait_for
from retention_operator.builders.monitoring import build_pod_monitor
from retention_operator.model import stack_from_body

pytestmark = pytest.mark.e2e

MONITORING = ("monitoring.coreos.com", "v1")


@pytest.fixture(scope="module")
def monitoring_crds(control_plane: ControlPlane) -> Iterator[None]:
    """Prometheus Operator's PodMonitor CRD, the one kind the operator writes."""
    install_crds(control_plane, ("podmonitors",))
    yield
    uninstall_crds(control_plane, ("podmonitors",))


def _pod_monitor(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            *MONITORING, namespace, "podmonitors", name
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def test_a_new_stack_gets_a_pod_monitor_it_owns(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    monitoring_crds: None,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    manifest = stack_manifest("watched", namespace, postgres=postgres, redis=redis_standalone)
    stack = ready_stack(control_plane, api_client, manifest, password=postgres.password)
    monitor = wait_for(
        lambda: _pod_monitor(api_client, namespace, "watched"), timeout=30, what="PodMonitor"
    )
    [owner] = monitor["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("RetentionStack", "watched")
    # Stored as built: the real CRD kept every field.
    assert monitor["spec"] == build_pod_monitor(stack_from_body(stack))["spec"]


def test_a_stack_that_turns_it_off_gets_none(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    monitoring_crds: None,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    manifest = stack_manifest("unwatched", namespace, postgres=postgres, redis=redis_standalone)
    manifest["spec"]["monitoring"] = {"podMonitor": {"enabled": False}}
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    assert _pod_monitor(api_client, namespace, "unwatched") is None
