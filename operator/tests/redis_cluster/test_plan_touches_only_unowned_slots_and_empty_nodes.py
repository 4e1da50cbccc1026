"""Bootstrap plans: fresh nodes meet node 0, only unowned slots move, empty masters replicate."""

from __future__ import annotations

from retention_operator.redis_cluster.plan import plan_meets, plan_replicas, plan_slots
from retention_operator.redis_cluster.topology import NodeView, parse_cluster_nodes

from .conftest import fresh_view as _fresh


def test_fresh_nodes_meet_node_zero_with_distinct_epochs() -> None:
    views = [_fresh(f"n{index}", 7000 + 2 * index) for index in range(6)]
    plan = plan_meets(views)
    assert plan.anchor == 0
    assert plan.newcomers == (1, 2, 3, 4, 5)
    assert plan.fresh == (0, 1, 2, 3, 4, 5)
    assert plan.blocked == ()


def test_a_lone_node_that_owns_slots_is_never_merged() -> None:
    views = [_fresh("n0", 7000), _fresh("n1", 7002)]
    owner = parse_cluster_nodes("n2 :7004@7005 myself,master - 0 0 0 connected 0-99\n")
    views.append(NodeView(info={}, lines=owner))
    plan = plan_meets(views)
    # The node with slots anchors; the empty ones join it.
    assert plan.anchor == 2
    assert plan.newcomers == (0, 1)
    assert plan.blocked == ()


def test_slots_go_to_the_first_nodes_and_owned_slots_stay() -> None:
    views = [_fresh(f"n{index}", 7000 + 2 * index) for index in range(6)]
    assert plan_slots(views, shards=3).assign == {
        0: [(0, 5461)],
        1: [(5462, 10922)],
        2: [(10923, 16383)],
    }
    partly = parse_cluster_nodes("n1 :7002@7003 myself,master - 0 0 0 connected 5462-6000\n")
    views[1] = NodeView(info={}, lines=partly)
    assert plan_slots(views, shards=3).assign[1] == [(6001, 10922)]


def test_empty_masters_spread_over_the_masters_once_all_slots_are_owned() -> None:
    views = [_fresh(f"n{index}", 7000 + 2 * index) for index in range(6)]
    assert plan_replicas(views) == {}
    for index, (first, last) in enumerate([(0, 5461), (5462, 10922), (10923, 16383)]):
        text = f"n{index} :{7000 + 2 * index}@1 myself,master - 0 0 0 connected {first}-{last}\n"
        views[index] = NodeView(info={}, lines=parse_cluster_nodes(text))
    assert plan_replicas(views) == {3: "n0", 4: "n1", 5: "n2"}
