"""A Deployment on the local control plane becomes Running pods on KWOK nodes."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

pytestmark = pytest.mark.e2e


def _deployment(name: str, replicas: int) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
            },
        },
    }


def _pods(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"app={app}").items)


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_replicas_run_on_kwok_nodes_and_are_collected(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, _deployment("web", 3))

    def three_running() -> bool:
        pods = _pods(core, namespace, "web")
        return len(pods) == 3 and all(p.status.phase == "Running" for p in pods)

    _wait(three_running, 60, "3 Running pods")
    pods = _pods(core, namespace, "web")
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)
    assert all(p.status.pod_ip for p in pods)
    replica_sets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    assert len(replica_sets) == 1
    assert replica_sets[0].metadata.owner_references[0].kind == "Deployment"

    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")
    _wait(lambda: not _pods(core, namespace, "web"), 60, "pods garbage-collected")
    assert not apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
