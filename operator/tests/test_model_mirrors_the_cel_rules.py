"""The model refuses what the CRD's CEL rules refuse, with the same messages, and its
defaults are the ones the issue and the workloads' contract fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

import retention_contract as contract
from retention_operator import model
from retention_operator.model import RetentionStack, RetentionStackSpec, RetentionStackStatus

MINIMAL: dict[str, Any] = {
    "api": {"image": "app:1"},
    "workers": {},
    "redis": {"managed": {}},
    "pgbouncer": {
        "database": {"host": "pg", "name": "app", "user": "app"},
        "credentialsSecretRef": {"name": "pg"},
    },
}


def _spec(**changes: Any) -> dict[str, Any]:
    """Return MINIMAL with dotted-path changes applied (``api.minReplicas=3``)."""
    spec = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return spec


def _refused(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        RetentionStackSpec.model_validate(spec)
    return str(info.value)


def test_defaults_of_a_minimal_spec() -> None:
    spec = RetentionStackSpec.model_validate(MINIMAL)
    assert spec.paused is False
    assert spec.api.autoscaling.model_dump() == {
        "enabled": True,
        "target_p95_milliseconds": 200,
        "scale_down_stabilization_seconds": 180,
        "scale_up": {"percent": 900, "pods": 4, "period_seconds": 15},
        "fallback_replicas": None,
        "fallback_after_failed_ticks": 6,
        "forecast": True,
        "requests_per_replica_per_second": None,
        "prometheus_url": None,
        "latency": {
            "histogram": "retention_api_request_duration_seconds",
            "series_by": "stackLabel",
            "namespace_label": "namespace",
            "stack_label": "stack",
            "pod_label": "pod",
            "matchers": None,
            "query": None,
        },
    }
    assert spec.workers.autoscaling.model_dump() == {
        "enabled": True,
        "target_queue_wait_seconds": 60,
        "target_drain_seconds": 30,
        "scale_down_stabilization_seconds": 120,
        "scale_to_zero": False,
        "activation_backlog": 1,
        "scale_up": {"percent": 900, "pods": 4, "period_seconds": 15},
        "fallback_replicas": None,
        "fallback_after_failed_ticks": 6,
        "forecast": True,
        "jobs_per_worker_per_second": 100.0,
    }
    assert spec.redis.managed is not None
    assert spec.redis.managed.retain_on_delete is True
    assert spec.redis.managed.pods == 6
    assert spec.pgbouncer.pool_mode == "transaction"


def test_defaults_match_the_workloads_contract() -> None:
    assert model.DEFAULT_HTTP_PORT == contract.DEFAULT_HTTP_PORT
    assert model.DEFAULT_METRICS_PORT == contract.DEFAULT_METRICS_PORT
    assert model.DEFAULT_QUEUE_GROUP == contract.DEFAULT_QUEUE_GROUP
    assert model.DEFAULT_LATENCY_HISTOGRAM == contract.METRIC_API_REQUEST_DURATION


def test_wire_format_is_camel_case() -> None:
    dumped = RetentionStackSpec.model_validate(MINIMAL).model_dump(by_alias=True)
    assert "targetP95Milliseconds" in dumped["api"]["autoscaling"]
    assert "replicasPerShard" in dumped["redis"]["managed"]
    assert "credentialsSecretRef" in dumped["pgbouncer"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"api__minReplicas": 5, "api__maxReplicas": 3}, "spec.api.minReplicas must be less"),
        ({"workers__minReplicas": 5, "workers__maxReplicas": 3}, "spec.workers.minReplicas"),
        (
            {"api__autoscaling": {"fallbackReplicas": 50}},
            "spec.api.autoscaling.fallbackReplicas must lie within",
        ),
        (
            {"workers__autoscaling": {"fallbackReplicas": 0}},
            "spec.workers.autoscaling.fallbackReplicas must lie within",
        ),
        (
            {"workers__autoscaling": {"targetQueueWaitSeconds": 10}},
            "spec.workers.autoscaling.targetDrainSeconds must be less than or equal",
        ),
        ({"workers__minReplicas": 0}, "spec.workers.autoscaling.scaleToZero must be true"),
        (
            {"workers__autoscaling": {"scaleToZero": True}},
            "spec.workers.autoscaling.scaleToZero must be true",
        ),
        ({"redis": {}}, "spec.redis must set exactly one of managed or external"),
        (
            {"redis": {"managed": {}, "external": {"url": "redis://r:6379"}}},
            "spec.redis must set exactly one",
        ),
        (
            {"redis": {"external": {"url": "redis://:secret@r:6379"}}},
            "spec.redis.external.url must not carry a password",
        ),
        ({"redis__managed": {"storage": {"size": "-1Gi"}}}, "storage.size"),
        ({"redis__managed": {"storage": {"size": "0"}}}, "must be a positive"),
        (
            {"pgbouncer__defaultPoolSize": 2000, "pgbouncer__maxClientConn": 100},
            "spec.pgbouncer.defaultPoolSize",
        ),
        ({"pgbouncer__poolMode": "bogus"}, "poolMode"),
        ({"api__autoscaling": {"targetP95Milliseconds": 0}}, "targetP95Milliseconds"),
        ({"api__resources": {"requests": {"cpu": "lots"}}}, "not a Kubernetes quantity"),
        (
            {
                "api__env": [
                    {"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
                ]
            },
            "set value or valueFrom, not both",
        ),
        ({"api__env": [{"name": "A", "valueFrom": {}}]}, "valueFrom must set exactly one"),
        ({"api__unknown": 1}, "unknown"),
    ],
)
def test_refuses_with_the_message_of_the_cel_rule(changes: dict[str, Any], message: str) -> None:
    assert message in _refused(_spec(**changes))


def test_scale_to_zero_with_min_zero_is_accepted() -> None:
    spec = RetentionStackSpec.model_validate(
        _spec(workers__minReplicas=0, workers__autoscaling={"scaleToZero": True})
    )
    assert spec.workers.min_replicas == 0


@pytest.mark.parametrize("size", ["1Gi", "500Mi", "1.5Ti", "10G", "2e9"])
def test_positive_storage_sizes_are_accepted(size: str) -> None:
    spec = RetentionStackSpec.model_validate(_spec(redis__managed={"storage": {"size": size}}))
    assert spec.redis.managed is not None
    assert spec.redis.managed.storage.size == size


def test_the_object_parses_metadata_and_ignores_what_it_does_not_need() -> None:
    stack = RetentionStack.model_validate(
        {
            "apiVersion": "retention.dev/v1alpha1",
            "kind": "RetentionStack",
            "metadata": {"name": "s", "namespace": "n", "uid": "u", "annotations": {"a": "b"}},
            "spec": MINIMAL,
            "status": {"observedGeneration": 3, "somethingNew": 1},
        }
    )
    assert (stack.name, stack.namespace, stack.metadata.uid) == ("s", "n", "u")
    assert stack.status is not None
    assert stack.status.observed_generation == 3


def test_status_dumps_camel_case_without_nulls() -> None:
    status = RetentionStackStatus.model_validate(
        {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "Reconciling"}],
            "components": {"api": {"desiredReplicas": 2, "readyReplicas": 1}},
            "autoscaling": {"workers": {"backlog": 7, "lastDecision": "Hold"}},
            "apiReplicas": 1,
        }
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["components"] == {"api": {"desiredReplicas": 2, "readyReplicas": 1}}
    assert dumped["autoscaling"] == {"workers": {"backlog": 7, "lastDecision": "Hold"}}
    assert dumped["conditions"][0]["status"] == "Unknown"
