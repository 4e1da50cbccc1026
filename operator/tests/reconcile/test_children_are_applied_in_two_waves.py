"""Children go in two waves: what pods need or are fenced by, then the workloads."""

from __future__ import annotations

from retention_operator.model import RetentionStack
from retention_operator.reconcile import children


class _ServesPodMonitors:
    """The one question building these children asks the API server."""

    async def serves(self, api_version: str, kind: str) -> bool:
        return True


def _stack() -> RetentionStack:
    return RetentionStack.model_validate(
        {
            "apiVersion": "retention.dev/v1alpha1",
            "kind": "RetentionStack",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {
                "api": {"image": "app:1"},
                "workers": {},
                "redis": {"external": {"url": "redis://r:6379/0"}},
                "pgbouncer": {
                    "database": {"host": "pg.db.svc", "name": "app", "user": "app_user"},
                    "credentialsSecretRef": {"name": "pg-creds"},
                },
            },
        }
    )


async def test_no_workload_is_in_the_first_wave_and_nothing_else_in_the_second() -> None:
    # An external Redis: building the children asks only whether PodMonitors are served.
    kube = _ServesPodMonitors()
    desired = await children.desired(kube, _stack(), operator_namespace=None)  # type: ignore[arg-type]
    first, second = children.waves(desired)
    assert {c.manifest["kind"] for c in first} == {
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PodMonitor",
    }
    assert sorted(c.manifest["metadata"]["name"] for c in second) == [
        "demo-api",
        "demo-pgbouncer",
        "demo-workers",
    ]
    assert len(first) + len(second) == len(desired)
