"""The stack's spec becomes the policy's configuration, rate limits included."""

from __future__ import annotations

from typing import Any

from retention_operator.autoscaling.config import ScaleUpLimit
from retention_operator.autoscaling.targets import api_config, worker_config
from retention_operator.model import stack_from_body


def _stack(api: dict[str, Any], workers: dict[str, Any]) -> Any:
    return stack_from_body(
        {
            "metadata": {"name": "s", "namespace": "ns", "uid": "u"},
            "spec": {
                "api": {"image": "img", "minReplicas": 3, "maxReplicas": 9, **api},
                "workers": {"minReplicas": 1, "maxReplicas": 40, **workers},
                "redis": {"external": {"url": "redis://127.0.0.1:6379/0"}},
                "pgbouncer": {
                    "database": {"host": "db", "name": "d", "user": "u"},
                    "credentialsSecretRef": {"name": "c"},
                },
            },
        }
    )


def test_defaults_reach_the_policy() -> None:
    stack = _stack({}, {})
    api, workers = api_config(stack), worker_config(stack)
    assert (api.min_replicas, api.max_replicas, api.target_p95_milliseconds) == (3, 9, 200)
    assert api.scale_up == ScaleUpLimit(percent=900, pods=4, period_seconds=15)
    assert (workers.max_replicas, workers.target_drain_seconds) == (40, 30)


def test_scale_up_limits_come_from_the_spec() -> None:
    limit = {"scaleUp": {"percent": 50, "pods": 2, "periodSeconds": 30}}
    stack = _stack({"autoscaling": limit}, {"autoscaling": {"scaleUp": {"pods": 10}}})
    assert api_config(stack).scale_up == ScaleUpLimit(percent=50, pods=2, period_seconds=30)
    assert worker_config(stack).scale_up == ScaleUpLimit(percent=900, pods=10, period_seconds=15)


def test_the_api_capacity_prior_comes_from_the_spec() -> None:
    assert api_config(_stack({}, {})).requests_per_replica_per_second is None
    stack = _stack({"autoscaling": {"requestsPerReplicaPerSecond": 250}}, {})
    assert api_config(stack).requests_per_replica_per_second == 250.0
