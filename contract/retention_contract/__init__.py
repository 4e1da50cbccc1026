"""The contract between the operator and the workloads it deploys.

The operator (``retention_operator``) and the workloads (``retention_workloads``)
ship as separate images and never import each other. What ties them together is
written here once: the environment variables the operator sets on the API and
worker pods, the names of the metrics the API exports (which the autoscaler
queries), and how queue keys are derived. Both sides import this module; it
imports nothing from either. ``docs/contract.md`` documents the same names.
"""

from __future__ import annotations

from typing import Final

# Environment variables set by the operator on API and worker containers.
ENV_STACK_NAME: Final = "RETENTION_STACK_NAME"
ENV_STACK_NAMESPACE: Final = "RETENTION_STACK_NAMESPACE"
ENV_REDIS_URL: Final = "RETENTION_REDIS_URL"
"""``redis://host:port/0``; for Redis Cluster, any seed node of the cluster."""
ENV_REDIS_CLUSTER: Final = "RETENTION_REDIS_CLUSTER"
"""``"true"`` when the URL names a Redis Cluster node, ``"false"`` otherwise."""
ENV_REDIS_PASSWORD: Final = "RETENTION_REDIS_PASSWORD"
"""Taken from a Secret by ``valueFrom.secretKeyRef``; absent when Redis has no auth."""
ENV_QUEUE_STREAM: Final = "RETENTION_QUEUE_STREAM"
ENV_QUEUE_GROUP: Final = "RETENTION_QUEUE_GROUP"
ENV_DEADLETTER_STREAM: Final = "RETENTION_DEADLETTER_STREAM"
ENV_QUEUE_KIND: Final = "RETENTION_QUEUE_KIND"
"""``bullmq``, ``rq``, ``celery`` or ``list``; absent for a Redis Stream (the default kind)."""
ENV_QUEUE_NAME: Final = "RETENTION_QUEUE_NAME"
"""The library's queue name (bullmq, rq, celery)."""
ENV_QUEUE_PREFIX: Final = "RETENTION_QUEUE_PREFIX"
"""Key prefix: BullMQ's ``prefix``, RQ's key prefix, kombu's ``global_keyprefix`` (celery)."""
ENV_QUEUE_PRIORITY_STEPS: Final = "RETENTION_QUEUE_PRIORITY_STEPS"
"""celery: kombu's ``priority_steps``, comma-separated (``0,3,6,9``)."""
ENV_QUEUE_KEY: Final = "RETENTION_QUEUE_KEY"
"""list: the list jobs wait in."""
ENV_QUEUE_IN_PROGRESS_KEY: Final = "RETENTION_QUEUE_IN_PROGRESS_KEY"
"""list: the list of jobs being worked on, when the stack names one."""
ENV_RQ_KEY_PREFIX: Final = "RQ_KEY_PREFIX"
"""rq: RQ's own variable (RQ 3.0 and later), set to the same prefix the autoscaler reads."""
ENV_DATABASE_URL: Final = "RETENTION_DATABASE_URL"
"""``postgresql://user@pgbouncer-host:port/dbname``, without the password."""
ENV_DATABASE_READ_URL: Final = "RETENTION_DATABASE_READ_URL"
"""URL of the read pool (PgBouncer in front of the read replicas), same form as
ENV_DATABASE_URL; absent when the stack has no read replicas (reads go to ENV_DATABASE_URL).
A row a replica does not have yet is read again through ENV_DATABASE_URL."""
ENV_DATABASE_PASSWORD: Final = "RETENTION_DATABASE_PASSWORD"
"""Taken from the credentials Secret by ``valueFrom.secretKeyRef``."""
ENV_DATABASE_PASSWORD_FILE: Final = "RETENTION_DATABASE_PASSWORD_FILE"
"""A file holding the same password (the credentials Secret mounted as a volume). The
kubelet rewrites it when the Secret changes, so a client that reads it on every new
connection follows a password rotation without a restart; it wins over ENV_DATABASE_PASSWORD."""
ENV_DB_STATEMENT_CACHE_SIZE: Final = "RETENTION_DB_STATEMENT_CACHE_SIZE"
"""asyncpg statement cache; 0 (the default) for PgBouncer in transaction mode."""
ENV_HTTP_PORT: Final = "RETENTION_HTTP_PORT"
ENV_BIND_ADDRESS: Final = "RETENTION_BIND_ADDRESS"
"""Address the HTTP and metrics servers listen on; ``0.0.0.0`` (every interface) by default."""
ENV_METRICS_PORT: Final = "RETENTION_METRICS_PORT"
"""Worker only: the port of its /metrics endpoint (the API serves /metrics on its HTTP port)."""
ENV_JOB_CPU_MS: Final = "RETENTION_JOB_CPU_MS"
ENV_JOB_IO_MS: Final = "RETENTION_JOB_IO_MS"
ENV_API_SERVICE_MS: Final = "RETENTION_API_SERVICE_MS"
"""API only: I/O wait (milliseconds) of each request before its handler runs; 0 (default): none."""
ENV_API_CONCURRENCY: Final = "RETENTION_API_CONCURRENCY"
"""API only: requests one process serves at once, the rest queue in it; 0 (default): no limit.
With ENV_API_SERVICE_MS it bounds a pod's capacity (load tests of the autoscaler)."""
ENV_MAX_ATTEMPTS: Final = "RETENTION_MAX_ATTEMPTS"
ENV_CLAIM_IDLE_MS: Final = "RETENTION_CLAIM_IDLE_MS"
ENV_WORKER_CONCURRENCY: Final = "RETENTION_WORKER_CONCURRENCY"
ENV_SHUTDOWN_TIMEOUT_S: Final = "RETENTION_SHUTDOWN_TIMEOUT_S"
"""Seconds to finish held jobs (worker) or open requests (API) after SIGTERM; keep < grace."""
ENV_QUEUE_MAX_BACKLOG: Final = "RETENTION_QUEUE_MAX_BACKLOG"
"""API only: the backlog (the group's lag + pending) at which POST /v1/jobs refuses new
jobs with 503 and Retry-After; absent or 0: no bound but Redis's maxmemory."""
ENV_DB_POOL_MAX_SIZE: Final = "RETENTION_DB_POOL_MAX_SIZE"
"""Largest number of connections one process opens to PgBouncer."""
ENV_LOG_LEVEL: Final = "RETENTION_LOG_LEVEL"

# Metrics exported by the API and the workers. The API's histogram carries the
# labels ``namespace`` and ``stack`` (from ENV_STACK_NAMESPACE / ENV_STACK_NAME)
# so that one PromQL query can group every stack's latency at once.
METRIC_API_REQUEST_DURATION: Final = "retention_api_request_duration_seconds"
METRIC_API_JOBS_REFUSED: Final = "retention_api_jobs_refused_total"
"""Counter: jobs POST /v1/jobs refused with 503, by LABEL_REASON: ``queue_full`` (the
backlog is at RETENTION_QUEUE_MAX_BACKLOG), ``redis_memory`` (Redis is at its maxmemory)
or ``unavailable`` (Redis cannot be reached)."""
METRIC_WORKER_JOBS: Final = "retention_worker_jobs_total"
METRIC_WORKER_JOB_DURATION: Final = "retention_worker_job_duration_seconds"
METRIC_WORKER_IN_FLIGHT: Final = "retention_worker_jobs_in_flight"
METRIC_WORKER_RECLAIMED: Final = "retention_worker_jobs_reclaimed_total"
METRIC_WORKER_QUEUE_LATENCY: Final = "retention_worker_queue_latency_seconds"
"""Histogram: time from enqueue to the start of a job's first run."""
LABEL_OUTCOME: Final = "outcome"
"""Label of METRIC_WORKER_JOBS: ``done``, ``failed`` (an attempt failed) or ``deadlettered``."""
LABEL_REASON: Final = "reason"
"""Label of METRIC_API_JOBS_REFUSED."""
REFUSED_REASONS: Final = ("queue_full", "redis_memory", "unavailable")
LABEL_NAMESPACE: Final = "namespace"
LABEL_STACK: Final = "stack"

# Ports the workloads listen on by default.
DEFAULT_HTTP_PORT: Final = 8080
DEFAULT_METRICS_PORT: Final = 9090

DEFAULT_QUEUE_GROUP: Final = "workers"

# Defaults the workloads use when a variable is absent (a process started by
# hand); the operator always sets the variables.
DEFAULT_STACK_NAME: Final = "local"
DEFAULT_STACK_NAMESPACE: Final = "default"
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL: Final = "postgresql://retention@127.0.0.1:6432/retention"


def default_stream(namespace: str, stack: str) -> str:
    """Return the job stream key of the stack ``namespace/stack``.

    The namespace is part of the key so that two stacks of the same name in
    different namespaces never share a queue on one external Redis. The hash
    tag ``{namespace/stack}`` keeps the stream and its dead-letter stream in
    one Redis Cluster slot, so both can be touched in one transaction.
    """
    return f"{{{namespace}/{stack}}}:jobs"


def deadletter_stream(stream: str) -> str:
    """Return the dead-letter stream for a job stream (same hash slot)."""
    return f"{stream}:dead"
