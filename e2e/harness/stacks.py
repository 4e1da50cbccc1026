"""Helpers the e2e tests share: RetentionStack manifests, applying them, waiting, reading.

Tests under e2e/tests import these directly (``from harness.stacks import ...``);
a test folder's conftest.py cannot be imported from another folder under
pytest's importlib mode. Everything talks to the control plane as a user
would: kubectl for applies, the kubernetes client for reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.services import PostgresServer

GROUP, VERSION, PLURAL = "retention.dev", "v1alpha1", "retentionstacks"
SECRET = "db-credentials"


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5
) -> Any:
    """Poll until ``predicate`` returns a truthy value and return it; fail after ``timeout``.

    A 404 from the API server counts as "not yet"; other API errors propagate.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def stack_manifest(
    name: str,
    namespace: str,
    *,
    postgres: PostgresServer,
    redis_url: str,
    api: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RetentionStack on an external Redis at ``redis_url`` and the harness PostgreSQL.

    ``api`` and ``workers`` are merged over the defaults (API 2..6, workers 1..8).
    """
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RetentionStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "api": {
                "image": "example.invalid/workloads:1",
                "minReplicas": 2,
                "maxReplicas": 6,
                **(api or {}),
            },
            "workers": {"minReplicas": 1, "maxReplicas": 8, **(workers or {})},
            "redis": {"external": {"url": redis_url}},
            "pgbouncer": {
                "replicas": 1,
                "database": {
                    "host": postgres.host,
                    "port": postgres.port,
                    "name": postgres.dbname,
                    "user": postgres.user,
                },
                "credentialsSecretRef": {"name": SECRET},
            },
        },
    }


def create_secret(core: client.CoreV1Api, namespace: str, password: str) -> None:
    """The database credentials Secret the stack manifests refer to."""
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET), string_data={"password": password}
    )
    core.create_namespaced_secret(namespace, secret)


def apply_ok(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    """``kubectl apply --server-side`` a manifest as a user; fail with kubectl's message."""
    path = cp.run_dir / f"apply-{manifest['metadata']['name']}-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    try:
        result = cp.kubectl_run(
            "apply", "--server-side", "--field-manager=e2e-user", "-f", str(path)
        )
    finally:
        path.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr


def get_stack(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    """The stack as stored."""
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return cast(dict[str, Any], obj)


def replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    """``spec.replicas`` of a Deployment."""
    spec = apps.read_namespaced_deployment(name, namespace).spec
    return int(spec.replicas or 0) if spec is not None else 0


def events(core: client.CoreV1Api, namespace: str, *, reason: str) -> list[Any]:
    """The Events of a namespace with this reason, oldest first."""
    items = core.list_namespaced_event(namespace).items
    return [e for e in items if e.reason == reason]
