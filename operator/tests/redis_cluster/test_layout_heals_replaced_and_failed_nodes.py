"""Layout plans for nodes that lost their data or their master role, and for leaving masters."""

from __future__ import annotations

from retention_operator.redis_cluster.layout import plan_layout

from .conftest import cluster_views

EVEN = {"a": [(0, 5461)], "b": [(5462, 10922)], "c": [(10923, 16383)]}


def test_a_failed_master_with_a_replica_is_left_to_redis_failover() -> None:
    # Pod 2 came back empty as "z"; its old id "c" still serves slots and has a replica.
    order = ["a", "b", "z", "d", "e", "f"]
    views = cluster_views(
        order,
        slots=EVEN,
        masters={"d": "a", "e": "b", "f": "c"},
        flags={"c": "fail"},
        alone=["z"],
        ghosts=["c"],
    )
    layout = plan_layout(views, keep=6, shards=3, replicas=1)
    assert layout.forget == ()
    assert "take over" in layout.waiting
    assert not layout.moves and not layout.assign


def test_a_node_in_place_of_a_failed_master_takes_neither_its_replica_nor_slots() -> None:
    # Pod 0 came back empty as "z" and has met the others; its old id "a" still
    # serves slots, and "d" (pod 3) holds the only copy of them.
    order = ["z", "b", "c", "d", "e", "f"]
    views = cluster_views(
        order,
        slots=EVEN,
        masters={"d": "a", "e": "b", "f": "c"},
        flags={"a": "fail"},
        ghosts=["a"],
    )
    layout = plan_layout(views, keep=6, shards=3, replicas=1)
    assert not (layout.replicate or layout.moves or layout.assign or layout.forget)
    assert "take over" in layout.waiting


def test_a_replaced_replica_is_forgotten_everywhere_then_joins_where_a_replica_lacks() -> None:
    order = ["a", "b", "c", "d", "e", "z"]
    masters = {"d": "a", "e": "b", "f": "c"}
    views = cluster_views(
        order, slots=EVEN, masters=masters, flags={"f": "fail"}, alone=["z"], ghosts=["f"]
    )
    layout = plan_layout(views, keep=6, shards=3, replicas=1)
    assert sorted(layout.forget) == [(i, "f") for i in range(5)]
    # Once forgotten, the empty node meets the cluster, then replicates the master lacking one.
    del masters["f"]
    views = cluster_views(order, slots=EVEN, masters=masters, alone=["z"])
    assert plan_layout(views, keep=6, shards=3, replicas=1).meets is not None
    views = cluster_views(order, slots=EVEN, masters=masters)
    assert plan_layout(views, keep=6, shards=3, replicas=1).replicate == {5: "c"}


def test_a_master_lost_without_a_replica_gives_its_slots_to_the_node_in_its_place() -> None:
    order = ["a", "b", "z"]
    views = cluster_views(order, slots=EVEN, flags={"c": "fail"}, alone=["z"], ghosts=["c"])
    layout = plan_layout(views, keep=3, shards=3, replicas=0)
    assert sorted(layout.forget) == [(0, "c"), (1, "c")]
    # Forgotten, its slots are nobody's: they go to the new empty master, nothing moves.
    views = cluster_views(order, slots={"a": EVEN["a"], "b": EVEN["b"]})
    layout = plan_layout(views, keep=3, shards=3, replicas=0)
    assert layout.assign == {2: [(10923, 16383)]}
    assert layout.moves == ()


def test_a_member_not_yet_seen_failing_is_not_forgotten() -> None:
    order = ["a", "b", "c", "d", "e", "z"]
    views = cluster_views(
        order, slots=EVEN, masters={"d": "a", "e": "b", "f": "c"}, alone=["z"], ghosts=["f"]
    )
    layout = plan_layout(views, keep=6, shards=3, replicas=1)
    assert layout.forget == ()
    assert "failed" in layout.waiting


def test_a_leaving_master_with_a_staying_replica_hands_over_by_failover() -> None:
    # Pod 2 replicates "f" (pod 5), which took over shard 3 earlier; replicas go to 0.
    order = ["a", "b", "c", "d", "e", "f"]
    views = cluster_views(
        order,
        slots={"a": EVEN["a"], "b": EVEN["b"], "f": EVEN["c"]},
        masters={"d": "a", "e": "b", "c": "f"},
    )
    layout = plan_layout(views, keep=3, shards=3, replicas=0)
    assert layout.failovers == (2,)
    assert layout.moves == () and layout.leave == ()


def test_a_new_shard_without_a_new_pod_resets_a_replica_into_an_empty_master() -> None:
    # Two shards with two replicas each become three shards with one: same six pods.
    order = ["a", "b", "c", "d", "e", "f"]
    views = cluster_views(
        order,
        slots={"a": [(0, 8191)], "b": [(8192, 16383)]},
        masters={"c": "a", "d": "b", "e": "a", "f": "b"},
    )
    layout = plan_layout(views, keep=6, shards=3, replicas=1)
    assert layout.resets == (5,)
    assert not layout.blocked


def test_a_node_that_owns_slots_in_another_cluster_blocks_the_merge() -> None:
    order = ["a", "b", "x"]
    views = cluster_views(order, slots={"a": [(0, 100)], "x": [(200, 300)]}, alone=["x"])
    layout = plan_layout(views, keep=3, shards=3, replicas=0)
    assert "another cluster" in layout.blocked
