"""A replica CLUSTER NODES attaches but that is not linked and synced leaves the cluster not ok.

Redis reports ``master_link_status:up`` only once a sync has completed
(replication.c sets ``repl_state`` to CONNECTED at the end of the transfer),
and a replica that has never completed one cannot fail over (cluster.c,
``clusterHandleSlaveFailover``: its data age is counted from
``repl_down_since``, 0 until then). So the health names such a replica and
its master, and the cluster is ok only once every replica is up.
"""

from __future__ import annotations

import dataclasses

from retention_operator.reconcile.managed_redis import cluster_component_health
from retention_operator.reconcile.redis_status import redis_status
from retention_operator.reconcile.status import ComponentHealth
from retention_operator.redis_cluster.connection import Probe
from retention_operator.redis_cluster.health import ClusterHealth, Shape, assess
from retention_operator.redis_cluster.topology import NodeView

from .conftest import cluster_views

ORDER = ["a", "b", "c", "d", "e", "f"]
LABELS = [f"demo-redis-{index}" for index in range(6)]
SHAPE = Shape(shards=3, replicas=1)
SLOTS = {"a": [(0, 5460)], "b": [(5461, 10922)], "c": [(10923, 16383)]}
MASTERS = {"d": "a", "e": "b", "f": "c"}

MASTER = {"role": "master", "connected_slaves": "1"}
UP = {"role": "slave", "master_link_status": "up", "master_sync_in_progress": "0"}
#: As INFO replication reads while the master's data comes in (the first sync).
SYNCING = {
    "role": "slave",
    "master_link_status": "down",
    "master_sync_in_progress": "1",
    "master_link_down_since_seconds": "-1",
}
#: Before that: just after CLUSTER REPLICATE, and while the master waits its
#: repl-diskless-sync-delay before it answers the replica's PSYNC.
WAITING = {**SYNCING, "master_sync_in_progress": "0"}
#: Synced once, then the link went down.
LOST = {**WAITING, "master_link_down_since_seconds": "12"}


def _assess(
    replication: dict[str, dict[str, str]], *, shape: Shape | None = SHAPE
) -> ClusterHealth:
    views = cluster_views(ORDER, slots=SLOTS, masters=MASTERS)
    probes = [
        Probe(
            address=("127.0.0.1", 7000 + index),
            view=_with(view, replication.get(node, UP if node in MASTERS else MASTER)),
        )
        for index, (node, view) in enumerate(zip(ORDER, views, strict=True))
    ]
    return assess(probes, shape=shape, labels=LABELS)


def _with(view: NodeView, replication: dict[str, str]) -> NodeView:
    """The view with every slot assigned (as CLUSTER INFO says) and ``replication``."""
    info = {**view.info, "cluster_slots_assigned": "16384"}
    return dataclasses.replace(view, info=info, replication=replication)


def test_every_replica_linked_and_synced_is_ok() -> None:
    health = _assess({})

    assert health.ok, health.message
    assert health.syncing == ""
    assert health.message == "cluster ok: 3 shards, 3 replicas, 16384 slots"
    assert [shard.syncing for shard in health.shards] == [(), (), ()]


def test_a_replica_in_its_first_sync_is_named_with_its_master_and_not_ok() -> None:
    health = _assess({"e": SYNCING})

    assert not health.ok
    # Nothing is left for the plan to do, and the replica is attached: it only has no data yet.
    assert (health.formed, health.state_ok, health.settled, health.replicas) == (
        True,
        True,
        True,
        3,
    )
    assert health.syncing == "demo-redis-4 is syncing from demo-redis-1"
    assert (
        health.message == "Waiting for replicas to sync: demo-redis-4 is syncing from demo-redis-1."
    )
    assert [shard.syncing for shard in health.shards] == [(), ("demo-redis-4",), ()]


def test_a_replica_still_waiting_for_its_sync_and_one_that_lost_its_link_are_named() -> None:
    health = _assess({"d": WAITING, "f": LOST})

    assert not health.ok
    assert health.syncing == (
        "demo-redis-3 is syncing from demo-redis-0, demo-redis-5 lost its link to demo-redis-2"
    )
    assert [shard.syncing for shard in health.shards] == [("demo-redis-3",), (), ("demo-redis-5",)]


def test_a_replica_whose_replication_was_not_read_does_not_count_as_synced() -> None:
    health = _assess({"d": {}})

    assert not health.ok
    assert health.syncing == "demo-redis-3 is syncing from demo-redis-0"


def test_the_check_without_a_shape_waits_for_syncs_too() -> None:
    health = _assess({"e": SYNCING}, shape=None)

    assert (health.formed, health.state_ok, health.ok) == (True, True, False)
    assert (
        health.message == "Waiting for replicas to sync: demo-redis-4 is syncing from demo-redis-1."
    )
    assert _assess({}, shape=None).ok


def test_what_the_plan_still_does_comes_before_the_syncs_in_the_message() -> None:
    # f has left its master: the plan attaches it again; e's sync is mentioned once that is done.
    views = cluster_views(ORDER, slots=SLOTS, masters={"d": "a", "e": "b"})
    replication = {"d": UP, "e": SYNCING}
    probes = [
        Probe(address=("127.0.0.1", 7000 + i), view=_with(view, replication.get(node, MASTER)))
        for i, (node, view) in enumerate(zip(ORDER, views, strict=True))
    ]
    health = assess(probes, shape=SHAPE, labels=LABELS)

    assert not health.ok
    assert health.message == "Waiting for replicas: 2 of 3 attached."
    assert health.syncing == "demo-redis-4 is syncing from demo-redis-1"


def test_the_status_lists_the_replica_syncing_and_the_stack_is_not_ready() -> None:
    health = _assess({"e": SYNCING})

    block, _ = redis_status(None, health, shards=3, now="2026-01-01T00:00:00Z")
    component = cluster_component_health(ComponentHealth(6, 6), health)

    assert block["replicas"] == 3
    assert block["slotsPerMaster"][1] == {
        "master": "demo-redis-1",
        "slots": 5462,
        "ranges": "5461-10922",
        "replicas": ["demo-redis-4"],
        "syncing": ["demo-redis-4"],
    }
    assert "syncing" not in block["slotsPerMaster"][0]
    assert not component.healthy
    assert component.message == (
        "waiting for the Redis cluster to form: "
        "Waiting for replicas to sync: demo-redis-4 is syncing from demo-redis-1."
    )
    synced, _ = redis_status(None, _assess({}), shards=3, now="2026-01-01T00:00:00Z")
    assert all("syncing" not in entry for entry in synced["slotsPerMaster"])
    assert cluster_component_health(ComponentHealth(6, 6), _assess({})).healthy
