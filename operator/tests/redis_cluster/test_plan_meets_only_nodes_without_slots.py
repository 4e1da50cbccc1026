"""Meet plans: fresh nodes meet node 0, a node that owns slots anchors and is never merged."""

from __future__ import annotations

from retention_operator.redis_cluster.plan import plan_meets
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
