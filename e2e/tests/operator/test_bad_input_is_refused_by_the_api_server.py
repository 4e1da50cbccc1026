"""Invalid stacks are refused by the API server with a message that names the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from harness.controlplane import ControlPlane
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply, stack_manifest

pytestmark = pytest.mark.e2e


def _managed(manifest: dict[str, Any], size: str = "1Gi") -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["spec"]["redis"] = {"managed": {"shards": 3, "storage": {"size": size}}}
    return out


def _max_below_min(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["workers"].update({"minReplicas": 5, "maxReplicas": 2})
    return m


def _unknown_pool_mode(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["pgbouncer"]["poolMode"] = "sometimes"
    return m


def _both_redis_modes(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["redis"]["managed"] = _managed(m)["spec"]["redis"]["managed"]
    return m


def _no_redis_mode(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["redis"] = {}
    return m


def _no_backlog_at_all(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["api"]["maxBacklog"] = 0
    return m


def _queue(queue: dict[str, Any], *, cluster: bool = False) -> Callable[..., dict[str, Any]]:
    def mutate(m: dict[str, Any]) -> dict[str, Any]:
        m["spec"]["workers"]["queue"] = queue
        if cluster:
            m["spec"]["redis"]["external"]["cluster"] = True
        return m

    return mutate


CASES: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "max below min": (
        _max_below_min,
        "spec.workers.minReplicas must be less than or equal to spec.workers.maxReplicas",
    ),
    "unknown pool mode": (_unknown_pool_mode, "spec.pgbouncer.poolMode"),
    "negative storage": (lambda m: _managed(m, "-5Gi"), "spec.redis.managed.storage.size"),
    "both redis modes": (
        _both_redis_modes,
        "spec.redis must set exactly one of managed or external",
    ),
    "a backlog bound of zero": (_no_backlog_at_all, "spec.api.maxBacklog"),
    "neither redis mode": (
        _no_redis_mode,
        "spec.redis must set exactly one of managed or external",
    ),
    "two queue kinds": (
        _queue({"bullmq": {"name": "q"}, "rq": {}}),
        "spec.workers.queue must set at most one of bullmq, rq, celery and list",
    ),
    "stream fields with bullmq": (
        _queue({"group": "workers", "bullmq": {"name": "q"}}),
        "spec.workers.queue.stream and group belong to a Redis Stream queue",
    ),
    "bullmq on a cluster without a hash tag": (
        _queue({"bullmq": {"name": "q"}}, cluster=True),
        "spec.workers.queue.bullmq: on a Redis Cluster the prefix or the name must hold a hash",
    ),
    "celery on a cluster": (
        _queue({"celery": {}}, cluster=True),
        "spec.workers.queue.celery needs a standalone Redis",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_stack_is_refused_naming_the_field(
    case: str,
    control_plane: ControlPlane,
    crd_installed: str,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    mutate, expected = CASES[case]
    manifest = mutate(stack_manifest("bad", namespace, postgres=postgres, redis=redis_standalone))
    result = apply(control_plane, manifest)
    assert result.returncode != 0, f"{case}: accepted"
    assert expected in result.stderr, result.stderr
    assert "bad" not in control_plane.kubectl("get", "rstack", "-n", namespace, "-o", "name")
