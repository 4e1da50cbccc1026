"""The operator's settings, read once from the environment into a frozen object.

Called by ``main`` at start-up; everything else receives the object. A bad
value raises ``ValueError`` naming the variable, before any handler runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_NAMESPACES = "RETENTION_WATCH_NAMESPACES"
ENV_METRICS_PORT = "RETENTION_METRICS_PORT"
ENV_HEALTH_PORT = "RETENTION_HEALTH_PORT"
ENV_TICK_SECONDS = "RETENTION_AUTOSCALER_TICK_SECONDS"
ENV_AUTOSCALER = "RETENTION_AUTOSCALER_ENABLED"
ENV_PROMETHEUS_URL = "RETENTION_PROMETHEUS_URL"
ENV_PEERING = "RETENTION_PEERING_NAME"
ENV_PRIORITY = "RETENTION_PEERING_PRIORITY"
ENV_PRIORITY_FROM_POD_NAME = "RETENTION_PEERING_PRIORITY_FROM_POD_NAME"
ENV_POD_NAME = "RETENTION_POD_NAME"
ENV_RETRY_SECONDS = "RETENTION_RETRY_SECONDS"
ENV_LOG_FORMAT = "RETENTION_LOG_FORMAT"
ENV_BIND_ADDRESS = "RETENTION_BIND_ADDRESS"
ENV_OPERATOR_NAMESPACE = "RETENTION_OPERATOR_NAMESPACE"
ENV_READ_POOL_TICK_SECONDS = "RETENTION_READ_POOL_TICK_SECONDS"
ENV_MAX_RECONCILES = "RETENTION_MAX_CONCURRENT_RECONCILES"
ENV_KUBE_MAX_IN_FLIGHT = "RETENTION_KUBE_MAX_IN_FLIGHT"


@dataclass(frozen=True)
class Settings:
    """Everything the operator reads from its environment."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    metrics_port: int = 8080
    health_port: int = 8081
    autoscaler_enabled: bool = True
    tick_seconds: float = 5.0
    prometheus_url: str | None = None
    """Default Prometheus for stacks that name none; None disables API latency scaling."""
    peering_name: str | None = None
    """kopf peering object name; None runs standalone (one replica)."""
    peering_priority: int = 0
    retry_seconds: float = 10.0
    """Delay before a stalled stack (missing Secret, unreachable database) is checked again."""
    log_format: str = "json"
    bind_address: str = "0.0.0.0"
    """Address of the metrics and liveness endpoints (127.0.0.1 in tests)."""
    operator_namespace: str | None = None
    """Where the operator runs (downward API); admitted to Redis by the NetworkPolicy."""
    read_pool_tick_seconds: float = 0.5
    """How often read replicas' lag is measured; keep it well under maxLagSeconds."""
    max_concurrent_reconciles: int = 8
    """Reconciles (and child-event settles) at once; the others wait their turn by priority."""
    kube_max_in_flight: int = 32
    """Requests to the API server at once, and connections in the pool."""


def _int(env: Mapping[str, str], key: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{key}={value} is outside [{low}, {high}]")
    return value


def _float(env: Mapping[str, str], key: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{key}={value} is outside [{low}, {high}]")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key}={raw!r} is not a boolean (true or false)")


def _peering_priority(env: Mapping[str, str]) -> int:
    """The base priority, minus the pod's ordinal when asked (StatefulSet pod N -> base - N).

    kopf freezes every replica that shares the top priority, so each pod needs
    its own; pod 0 leads and the others stand by.
    """
    base = _int(env, ENV_PRIORITY, 0, low=-(2**31), high=2**31 - 1)
    if not _bool(env, ENV_PRIORITY_FROM_POD_NAME, False):
        return base
    pod = env.get(ENV_POD_NAME, "")
    ordinal = pod.rsplit("-", 1)[-1]
    if not pod or not ordinal.isdigit():
        raise ValueError(
            f"{ENV_PRIORITY_FROM_POD_NAME} is true but {ENV_POD_NAME}={pod!r} "
            "does not end in -<ordinal>"
        )
    return base - int(ordinal)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``env`` (default: ``os.environ``); ValueError names a bad variable."""
    env = os.environ if env is None else env
    namespaces = tuple(n.strip() for n in env.get(ENV_NAMESPACES, "").split(",") if n.strip())
    log_format = env.get(ENV_LOG_FORMAT, "json").strip().lower() or "json"
    if log_format not in ("json", "plain"):
        raise ValueError(f"{ENV_LOG_FORMAT}={log_format!r} must be json or plain")
    return Settings(
        namespaces=namespaces,
        metrics_port=_int(env, ENV_METRICS_PORT, 8080, low=0, high=65535),
        health_port=_int(env, ENV_HEALTH_PORT, 8081, low=0, high=65535),
        autoscaler_enabled=_bool(env, ENV_AUTOSCALER, True),
        tick_seconds=_float(env, ENV_TICK_SECONDS, 5.0, low=0.2, high=300),
        prometheus_url=env.get(ENV_PROMETHEUS_URL) or None,
        peering_name=env.get(ENV_PEERING) or None,
        peering_priority=_peering_priority(env),
        retry_seconds=_float(env, ENV_RETRY_SECONDS, 10.0, low=0.5, high=3600),
        log_format=log_format,
        bind_address=env.get(ENV_BIND_ADDRESS, "0.0.0.0") or "0.0.0.0",
        operator_namespace=env.get(ENV_OPERATOR_NAMESPACE) or None,
        read_pool_tick_seconds=_float(env, ENV_READ_POOL_TICK_SECONDS, 0.5, low=0.1, high=60),
        max_concurrent_reconciles=_int(env, ENV_MAX_RECONCILES, 8, low=1, high=1024),
        kube_max_in_flight=_int(env, ENV_KUBE_MAX_IN_FLIGHT, 32, low=1, high=1024),
    )
