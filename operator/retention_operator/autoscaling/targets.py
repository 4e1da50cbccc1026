"""What the loop reads and decides for one stack, derived from its spec: pure functions.

The loop calls these for every tracked stack each tick: the policy
configuration of each scaled component, the queue to read, the Redis it lives
in and the Prometheus that scrapes the API. Nothing here does I/O; the Redis
password is passed in by the caller, which reads it from the Secret.
"""

from __future__ import annotations

from typing import TypedDict

from retention_operator.autoscaling.config import ApiPolicyConfig, ScaleUpLimit, WorkerPolicyConfig
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint
from retention_operator.builders import naming
from retention_operator.builders.env import queue_stream
from retention_operator.model import (
    ApiAutoscaling,
    KeySelector,
    RetentionStack,
    WorkersAutoscaling,
)


def api_config(stack: RetentionStack) -> ApiPolicyConfig:
    """The API's policy configuration from ``spec.api`` (bounds and autoscaling)."""
    api = stack.spec.api
    return ApiPolicyConfig(
        **_scaling(api.autoscaling, low=api.min_replicas, high=api.max_replicas),
        target_p95_milliseconds=api.autoscaling.target_p95_milliseconds,
        requests_per_replica_per_second=api.autoscaling.requests_per_replica_per_second,
    )


def worker_config(stack: RetentionStack) -> WorkerPolicyConfig:
    """The workers' policy configuration from ``spec.workers`` (bounds and autoscaling)."""
    workers = stack.spec.workers
    auto = workers.autoscaling
    return WorkerPolicyConfig(
        **_scaling(auto, low=workers.min_replicas, high=workers.max_replicas),
        target_queue_wait_seconds=auto.target_queue_wait_seconds,
        target_drain_seconds=auto.target_drain_seconds,
        scale_to_zero=auto.scale_to_zero,
        activation_backlog=auto.activation_backlog,
        jobs_per_worker_per_second=auto.jobs_per_worker_per_second,
    )


class _ScalingFields(TypedDict):
    enabled: bool
    min_replicas: int
    max_replicas: int
    scale_down_stabilization_seconds: int
    scale_up: ScaleUpLimit
    fallback_replicas: int | None
    fallback_after_failed_ticks: int


def _scaling(auto: ApiAutoscaling | WorkersAutoscaling, *, low: int, high: int) -> _ScalingFields:
    """The shared block of scaling fields, from the spec's shared block and the bounds."""
    up = auto.scale_up
    return _ScalingFields(
        enabled=auto.enabled,
        min_replicas=low,
        max_replicas=high,
        scale_down_stabilization_seconds=auto.scale_down_stabilization_seconds,
        scale_up=ScaleUpLimit(percent=up.percent, pods=up.pods, period_seconds=up.period_seconds),
        fallback_replicas=auto.fallback_replicas,
        fallback_after_failed_ticks=auto.fallback_after_failed_ticks,
    )


def queue_ref(stack: RetentionStack) -> QueueRef:
    """The stack's job stream and consumer group, named as the workers see them."""
    return QueueRef(
        namespace=stack.namespace,
        stack=stack.name,
        stream=queue_stream(stack),
        group=stack.spec.workers.queue.consumer_group,
    )


def password_ref(stack: RetentionStack) -> KeySelector | None:
    """The Secret key holding the Redis password, or None when Redis has no auth."""
    redis = stack.spec.redis
    if redis.external is not None:
        return redis.external.password_secret_ref
    return KeySelector(name=naming.redis_auth(stack.name), key=naming.REDIS_PASSWORD_KEY)


def redis_endpoint(stack: RetentionStack, *, password: str | None) -> RedisEndpoint:
    """Where the stack's queue lives: the external URL, or the managed cluster's Service."""
    redis = stack.spec.redis
    if redis.external is not None:
        return RedisEndpoint(
            url=redis.external.url, cluster=redis.external.cluster, password=password
        )
    host = naming.service_host(naming.redis(stack.name), stack.namespace)
    return RedisEndpoint(
        url=f"redis://{host}:{naming.REDIS_CLIENT_PORT}/0", cluster=True, password=password
    )


def prometheus_url(stack: RetentionStack, *, default: str | None) -> str | None:
    """The Prometheus that scrapes the stack's API: the spec's, else ``default`` (may be None)."""
    return stack.spec.api.autoscaling.prometheus_url or default
