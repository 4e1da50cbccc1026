"""Helpers for the operator's end-to-end tests: stack manifests, waits, reads."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.services import PostgresServer, RedisServer

GROUP, VERSION, PLURAL = "retention.dev", "v1alpha1", "retentionstacks"
SECRET = "db-credentials"


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5
) -> Any:
    """Poll until ``predicate`` returns a truthy value and return it; fail after ``timeout``."""
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
    managed_redis: bool = False,
    retain_on_delete: bool = True,
    api_image: str = "example.invalid/workloads:1",
) -> dict[str, Any]:
    """A RetentionStack pointing at the harness's PostgreSQL and Redis (or a managed Redis)."""
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
        assert redis is not None
        redis_spec = {"external": {"url": redis.url}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RetentionStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "api": {"image": api_image, "minReplicas": 2, "maxReplicas": 6},
            # The workers run the same image by default; name it so that an
            # API image change in a test concerns the API alone.
            "workers": {"image": "example.invalid/workloads:1", "minReplicas": 1, "maxReplicas": 8},
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
            },
        },
    }


def create_secret(core: client.CoreV1Api, namespace: str, password: str) -> None:
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": SECRET}, "stringData": {"password": password}},
    )


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
    obj: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def condition(stack: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (stack.get("status") or {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_ready(stack: dict[str, Any]) -> bool:
    cond = condition(stack, "Ready")
    status = stack.get("status") or {}
    return bool(
        cond
        and cond["status"] == "True"
        and status.get("observedGeneration") == stack["metadata"]["generation"]
    )


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]
