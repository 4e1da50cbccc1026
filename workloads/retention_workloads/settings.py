"""Environment -> frozen settings for the API and the worker.

The operator sets the variables named in :mod:`retention_contract`; this module
is the only place in the workloads that reads the environment. Every variable
has a default so that a developer can run the API or a worker by hand against
local servers; ``docs/contract.md`` lists them with their meaning.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import retention_contract as contract


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the API and the worker read from their environment."""

    stack: str
    namespace: str
    redis_url: str
    redis_cluster: bool
    redis_password: str | None
    stream: str
    group: str
    deadletter_stream: str
    database_url: str
    database_read_url: str | None
    """The read pool (read replicas); None sends reads to ``database_url``."""
    database_password: str | None
    database_password_file: str | None
    """Read on every new connection when set (it follows a rotated Secret); wins over
    ``database_password``."""
    statement_cache_size: int
    db_pool_max_size: int
    queue_max_backlog: int
    """API only: refuse new jobs while the backlog is at this many; 0 for no bound."""
    bind_address: str
    http_port: int
    metrics_port: int
    job_cpu_ms: int
    job_io_ms: int
    api_service_ms: int
    """I/O wait of each API request before its handler (0: none); see :mod:`capacity`."""
    api_concurrency: int
    """Requests one API process serves at once; the rest queue (0: no limit)."""
    max_attempts: int
    claim_idle_ms: int
    concurrency: int
    shutdown_timeout_s: float
    consumer: str
    log_level: str


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (``os.environ`` when None).

    Raises :class:`SettingsError` naming the variable when a value is malformed
    or out of range; an absent or empty variable takes its default.
    """
    env = os.environ if environ is None else environ
    stack = _text(env, contract.ENV_STACK_NAME, contract.DEFAULT_STACK_NAME)
    namespace = _text(env, contract.ENV_STACK_NAMESPACE, contract.DEFAULT_STACK_NAMESPACE)
    stream = _text(env, contract.ENV_QUEUE_STREAM, contract.default_stream(namespace, stack))
    return Settings(
        stack=stack,
        namespace=namespace,
        redis_url=_text(env, contract.ENV_REDIS_URL, contract.DEFAULT_REDIS_URL),
        redis_cluster=_flag(env, contract.ENV_REDIS_CLUSTER, default=False),
        redis_password=env.get(contract.ENV_REDIS_PASSWORD) or None,
        stream=stream,
        group=_text(env, contract.ENV_QUEUE_GROUP, contract.DEFAULT_QUEUE_GROUP),
        deadletter_stream=_text(
            env, contract.ENV_DEADLETTER_STREAM, contract.deadletter_stream(stream)
        ),
        database_url=_text(env, contract.ENV_DATABASE_URL, contract.DEFAULT_DATABASE_URL),
        database_read_url=env.get(contract.ENV_DATABASE_READ_URL, "").strip() or None,
        database_password=env.get(contract.ENV_DATABASE_PASSWORD) or None,
        database_password_file=env.get(contract.ENV_DATABASE_PASSWORD_FILE, "").strip() or None,
        statement_cache_size=_int(env, contract.ENV_DB_STATEMENT_CACHE_SIZE, 0, low=0),
        db_pool_max_size=_int(env, contract.ENV_DB_POOL_MAX_SIZE, 10, low=1),
        queue_max_backlog=_int(env, contract.ENV_QUEUE_MAX_BACKLOG, 0, low=0),
        bind_address=_text(env, contract.ENV_BIND_ADDRESS, "0.0.0.0"),
        http_port=_int(env, contract.ENV_HTTP_PORT, contract.DEFAULT_HTTP_PORT, low=1, high=65535),
        metrics_port=_int(
            env, contract.ENV_METRICS_PORT, contract.DEFAULT_METRICS_PORT, low=1, high=65535
        ),
        job_cpu_ms=_int(env, contract.ENV_JOB_CPU_MS, 0, low=0),
        job_io_ms=_int(env, contract.ENV_JOB_IO_MS, 0, low=0),
        api_service_ms=_int(env, contract.ENV_API_SERVICE_MS, 0, low=0, high=600_000),
        api_concurrency=_int(env, contract.ENV_API_CONCURRENCY, 0, low=0, high=100_000),
        max_attempts=_int(env, contract.ENV_MAX_ATTEMPTS, 5, low=1),
        claim_idle_ms=_int(env, contract.ENV_CLAIM_IDLE_MS, 30_000, low=100),
        concurrency=_int(env, contract.ENV_WORKER_CONCURRENCY, 16, low=1, high=1024),
        shutdown_timeout_s=_float(env, contract.ENV_SHUTDOWN_TIMEOUT_S, 20.0, low=0.0),
        # HOSTNAME is the pod name in Kubernetes; the pid keeps two workers
        # started by hand on one host apart.
        consumer=f"{env.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}",
        log_level=_text(env, contract.ENV_LOG_LEVEL, "INFO").upper(),
    )


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _int(
    env: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise SettingsError(f"{name} must be {bounds}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be >= {low}, not {value}")
    return value
