"""What the loop reads and decides for one stack, derived from its spec: pure functions.

The loop calls these for every tracked stack each tick: the policy
configuration of each scaled component, the queue to read, the Redis it lives
in and the Prometheus that scrapes the API. Nothing here does I/O; the Redis
password is passed in by the caller, which reads it from the Secret.
"""

from __future__ import annotations

from retention_operator.autoscaling.config import ApiPolicyConfig, ScaleUpLimit, WorkerPolicyConfig
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint
from retention_operator.builders import naming
from retention_operator.builders.env import queue_stream
from retention_operator.model import KeySelector, RetentionStack, ScaleUp


def api_config(stack: RetentionStack) -> ApiPolicyConfig:
    """The API's policy configuration from ``spec.api`` (bounds and autoscaling)."""
    api = stack.spec.api
    auto = api.autoscaling
    return ApiPolicyConfig(
        enabled=auto.enabled,
        min_replicas=api.min_replicas,
        max_replicas=api.max_replicas,
        target_p95_milliseconds=auto.target_p95_milliseconds,
        scale_down_stabilization_seconds=auto.scale_down_stabilization_seconds,
        fallback_replicas=auto.fallback_replicas,
        fallback_after_failed_ticks=auto.fallback_after_failed_ticks,
        scale_up=_scale_up(auto.scale_up),
    )


def _scale_up(spec: ScaleUp) -> ScaleUpLimit:
    return ScaleUpLimit(percent=spec.percent, pods=spec.pods, period_seconds=spec.period_seconds)


def worker_config(stack: RetentionStack) -> WorkerPolicyConfig:
    """The workers' policy configuration from ``spec.workers`` (bounds and autoscaling)."""
    workers = stack.spec.workers
    auto = workers.autoscaling
    return WorkerPolicyConfig(
        enabled=auto.enabled,
        min_replicas=workers.min_replicas,
        max_replicas=workers.max_replicas,
        target_queue_wait_seconds=auto.target_queue_wait_seconds,
        target_drain_seconds=auto.target_drain_seconds,
        scale_down_stabilization_seconds=auto.scale_down_stabilization_seconds,
        scale_to_zero=auto.scale_to_zero,
        activation_backlog=auto.activation_backlog,
        fallback_replicas=auto.fallback_replicas,
        fallback_after_failed_ticks=auto.fallback_after_failed_ticks,
        jobs_per_worker_per_second=auto.jobs_per_worker_per_second,
        scale_up=_scale_up(auto.scale_up),
    )


def queue_ref(stack: RetentionStack) -> QueueRef:
    """The stack's job stream and consumer group, named as the workers see them."""
    return QueueRef(
        namespace=stack.namespace,
        stack=stack.name,
        stream=queue_stream(stack),
        group=stack.spec.workers.queue.group,
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
