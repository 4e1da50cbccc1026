"""While slots move, Ready and Reconciling say ``Resharding`` with how many move where."""

from __future__ import annotations

from retention_operator.reconcile.managed_redis import cluster_component_health
from retention_operator.reconcile.status import REASON_RESHARDING, ComponentHealth, status_patch
from retention_operator.redis_cluster import ClusterHealth

T0 = "2026-01-01T00:00:00Z"
MOVING = "moving 1365 of 4096 slots to shard 4 of 4 (demo-redis-6)"


def _cluster(**fields: object) -> ClusterHealth:
    base = {
        "answering": 8,
        "total": 8,
        "formed": True,
        "state_ok": True,
        "masters": 4,
        "replicas": 4,
        "message": "Resharding: " + MOVING,
        "settled": False,
        "resharding": True,
        "moving": MOVING,
    }
    return ClusterHealth(**{**base, **fields})  # type: ignore[arg-type]


def test_a_move_in_progress_is_reconciling_with_reason_resharding() -> None:
    redis = cluster_component_health(ComponentHealth(8, 8), _cluster())
    components = {"api": ComponentHealth(2, 2), "redis": redis}

    patch = status_patch(
        previous={}, generation=4, components=components, problem=None, paused=False, now=T0
    )

    conditions = {c["type"]: c for c in patch["conditions"]}
    assert conditions["Reconciling"]["status"] == "True"
    assert conditions["Reconciling"]["reason"] == REASON_RESHARDING
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == REASON_RESHARDING
    assert MOVING in conditions["Reconciling"]["message"]
    assert conditions["Stalled"]["status"] == "False"


def test_other_waits_of_the_cluster_stay_progressing() -> None:
    waiting = _cluster(
        resharding=False, moving="", message="Waiting for replicas: 3 of 4 attached."
    )
    redis = cluster_component_health(ComponentHealth(8, 8), waiting)

    patch = status_patch(
        previous={}, generation=4, components={"redis": redis}, problem=None, paused=False, now=T0
    )

    reconciling = next(c for c in patch["conditions"] if c["type"] == "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Progressing")
    assert redis.message == "waiting for the Redis cluster to form: " + waiting.message


def test_a_finished_move_is_ready() -> None:
    done = _cluster(settled=True, resharding=False, moving="", message="cluster ok")
    redis = cluster_component_health(ComponentHealth(8, 8), done)

    patch = status_patch(
        previous={}, generation=4, components={"redis": redis}, problem=None, paused=False, now=T0
    )

    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Ready")
