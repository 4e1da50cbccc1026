"""Helpers the e2e tests share: RetentionStack manifests, applying them, waiting, reading.

Tests under e2e/tests import these directly (``from harness.stacks import ...``);
a test folder's conftest.py cannot be imported from another folder under
pytest's importlib mode. Everything talks to the control plane as a user
would: kubectl for applies, the kubernetes client for reads.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, cast

import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.services import PostgresServer, RedisServer

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
    redis: RedisServer | None = None,
    redis_url: str | None = None,
    managed_redis: bool = False,
    retain_on_delete: bool = True,
    api_image: str = "example.invalid/workloads:1",
    api: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
    pgbouncer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RetentionStack on the harness PostgreSQL and an external Redis (or a managed one).

    The Redis is ``redis`` (a harness server), ``redis_url``, or, with
    ``managed_redis``, a managed cluster of 3 shards with 1 replica each.
    ``api``, ``workers`` and ``pgbouncer`` are merged over the defaults (API 2..6,
    workers 1..8, one PgBouncer on the harness PostgreSQL).
    """
    if managed_redis:
        redis_spec: dict[str, Any] = {
            "managed": {
                "shards": 3,
                "replicasPerShard": 1,
                "storage": {"size": "1Gi"},
                "retainOnDelete": retain_on_delete,
            }
        }
    else:
        url = redis.url if redis is not None else redis_url
        assert url, "an external Redis needs redis or redis_url"
        redis_spec = {"external": {"url": url}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RetentionStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "api": {"image": api_image, "minReplicas": 2, "maxReplicas": 6, **(api or {})},
            # The workers run the API's image by default; name it so that an API
            # image change in a test concerns the API alone.
            "workers": {
                "image": "example.invalid/workloads:1",
                "minReplicas": 1,
                "maxReplicas": 8,
                **(workers or {}),
            },
            "redis": redis_spec,
            "pgbouncer": {
                "replicas": 1,
                "database": {
                    "host": postgres.host,
                    "port": postgres.port,
                    "name": postgres.dbname,
                    "user": postgres.user,
                },
                "credentialsSecretRef": {"name": SECRET},
                **(pgbouncer or {}),
            },
        },
    }


def create_secret(core: client.CoreV1Api, namespace: str, password: str) -> None:
    """The database credentials Secret the stack manifests refer to."""
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET), string_data={"password": password}
    )
    core.create_namespaced_secret(namespace, secret)


def apply(cp: ControlPlane, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``kubectl apply --server-side`` a manifest as a user would; the caller checks the result."""
    path = cp.run_dir / f"apply-{manifest['metadata']['name']}-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    try:
        return cp.kubectl_run("apply", "--server-side", "--field-manager=e2e-user", "-f", str(path))
    finally:
        path.unlink(missing_ok=True)


def apply_ok(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    """Apply ``manifest`` and fail the test with kubectl's message if it is refused."""
    result = apply(cp, manifest)
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


def condition(stack: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The stack's condition of this type, or None."""
    for cond in (stack.get("status") or {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_ready(stack: dict[str, Any]) -> bool:
    """Ready=True for the stack's current generation."""
    cond = condition(stack, "Ready")
    status = stack.get("status") or {}
    return bool(
        cond
        and cond["status"] == "True"
        and status.get("observedGeneration") == stack["metadata"]["generation"]
    )


def ready_stack(
    cp: ControlPlane, api_client: client.ApiClient, manifest: dict[str, Any], *, password: str
) -> dict[str, Any]:
    """Create the credentials Secret and ``manifest``, wait until it is Ready; return it."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    create_secret(client.CoreV1Api(api_client), namespace, password)
    apply_ok(cp, manifest)
    custom = client.CustomObjectsApi(api_client)
    ready: dict[str, Any] = wait_for(
        lambda: (s := get_stack(custom, namespace, name)) and is_ready(s) and s,
        timeout=90,
        what=f"stack {namespace}/{name} Ready",
    )
    return ready


def image(apps: client.AppsV1Api, namespace: str, deployment: str) -> str:
    """The image of a Deployment's first container."""
    found: Any = apps.read_namespaced_deployment(deployment, namespace)
    return str(found.spec.template.spec.containers[0].image)


def generations(apps: client.AppsV1Api, namespace: str) -> dict[str, int]:
    """metadata.generation per Deployment: it moves on spec changes only, not on status."""
    items: list[Any] = apps.list_namespaced_deployment(namespace).items
    return {str(d.metadata.name): int(d.metadata.generation) for d in items}
