"""What the loop reads and decides for one stack, derived from its spec: pure functions.

The policy configuration of each scaled component, the queue to read, the
Redis it lives in and the Prometheus that scrapes the API. The loop derives
them once per version of a stack (:func:`derive`, when it hears of the stack),
not every tick: a thousand stacks at rest would otherwise walk a thousand
specs every few seconds to find what did not change. Nothing here does I/O;
the Redis password is passed in by the caller, which reads it from the Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypedDict

import retention_contract as contract
from retention_operator.autoscaling.config import ApiPolicyConfig, ScaleUpLimit, WorkerPolicyConfig
from retention_operator.autoscaling.promql import HistogramSeries, LatencyQuery, StackQuery, render
from retention_operator.autoscaling.queues import (
    BullMQQueue,
    CeleryQueue,
    ListQueue,
    RQQueue,
    StreamQueue,
)
from retention_operator.autoscaling.signals import AnyQueue, LatencySource, QueueRef, RedisEndpoint
from retention_operator.builders import naming
from retention_operator.builders.env import queue_stream
from retention_operator.model import (
    ApiAutoscaling,
    KeySelector,
    RetentionStack,
    WorkersAutoscaling,
)


@dataclass(frozen=True, slots=True)
class Targets:
    """Everything the loop needs from one version of a stack's spec (see :func:`derive`)."""

    api: ApiPolicyConfig
    workers: WorkerPolicyConfig
    queue: QueueRef
    password: KeySelector | None
    """The Secret key of the Redis password; None when Redis has no auth."""
    redis: RedisEndpoint
    """Where the queue lives, without its password (:meth:`endpoint` adds it)."""
    latency: LatencySource | None

    def endpoint(self, password: str | None) -> RedisEndpoint:
        """The Redis endpoint with the password read from the Secret (if any)."""
        return self.redis if password is None else replace(self.redis, password=password)


def derive(stack: RetentionStack, *, default_prometheus: str | None) -> Targets:
    """What to read and how to decide for ``stack``; ``default_prometheus``: the
    operator's Prometheus for stacks whose spec names none."""
    return Targets(
        api=api_config(stack),
        workers=worker_config(stack),
        queue=queue_ref(stack),
        password=password_ref(stack),
        redis=redis_endpoint(stack, password=None),
        latency=latency_source(stack, default=default_prometheus),
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
    forecast: bool
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
        forecast=auto.forecast,
        min_replicas=low,
        max_replicas=high,
        scale_down_stabilization_seconds=auto.scale_down_stabilization_seconds,
        scale_up=ScaleUpLimit(percent=up.percent, pods=up.pods, period_seconds=up.period_seconds),
        fallback_replicas=auto.fallback_replicas,
        fallback_after_failed_ticks=auto.fallback_after_failed_ticks,
    )


def queue_ref(stack: RetentionStack) -> QueueRef:
    """The stack's queue, with the source that reads its kind, named as the workers see it."""
    return QueueRef(namespace=stack.namespace, stack=stack.name, source=queue_source(stack))


def queue_source(stack: RetentionStack) -> AnyQueue:
    """The reads of ``spec.workers.queue``: the block that is set, else a Redis Stream."""
    queue = stack.spec.workers.queue
    if queue.bullmq is not None:
        return BullMQQueue(name=queue.bullmq.name, prefix=queue.bullmq.prefix)
    if queue.rq is not None:
        return RQQueue(name=queue.rq.name, prefix=queue.rq.prefix)
    if queue.celery is not None:
        celery = queue.celery
        steps = tuple(celery.priority_steps)
        return CeleryQueue(name=celery.name, key_prefix=celery.key_prefix, priority_steps=steps)
    if queue.list is not None:
        return ListQueue(key=queue.list.key, in_progress_key=queue.list.in_progress_key)
    stream = queue_stream(stack)
    return StreamQueue(
        stream=stream, group=queue.consumer_group, deadletter=contract.deadletter_stream(stream)
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


def latency_source(stack: RetentionStack, *, default: str | None) -> LatencySource | None:
    """Where and how the stack's API latency is read; None without a Prometheus."""
    url = prometheus_url(stack, default=default)
    return None if url is None else LatencySource(url=url, query=latency_query(stack))


def latency_query(stack: RetentionStack) -> LatencyQuery:
    """``spec.api.autoscaling.latency`` as a query: its templates rendered for the stack,
    or the histogram and the way its series are selected (shared with other stacks)."""
    latency = stack.spec.api.autoscaling.latency
    if latency.query is not None:
        names = {"namespace": stack.namespace, "name": stack.name}
        return StackQuery(
            namespace=stack.namespace,
            name=stack.name,
            p95_seconds=render(latency.query.p95_seconds, **names),
            requests_per_second=render(latency.query.requests_per_second, **names),
        )
    return HistogramSeries(
        histogram=latency.histogram,
        series_by=latency.series_by,
        namespace_label=latency.namespace_label,
        stack_label=latency.stack_label,
        pod_label=latency.pod_label,
        matchers=latency.matchers,
    )
