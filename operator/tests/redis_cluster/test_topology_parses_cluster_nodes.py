"""CLUSTER NODES text becomes members, roles, bus ports and slots; plans follow from it."""

from __future__ import annotations

from retention_operator.redis_cluster.connection import Probe
from retention_operator.redis_cluster.health import assess
from retention_operator.redis_cluster.plan import plan_meets, plan_replicas, plan_slots
from retention_operator.redis_cluster.topology import (
    NodeView,
    parse_cluster_info,
    parse_cluster_nodes,
)

FORMED = """\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922
c3 127.0.0.1:7002@17002,redis-2.redis master - 0 1 3 connected 10923 10924-16383
d4 127.0.0.1:7003@17003 slave a1 0 1 1 connected
e5 127.0.0.1:7004@17004 slave,fail b2 0 1 2 disconnected
f6 127.0.0.1:7005@17005 handshake - 0 0 0 connected
"""


def _fresh(node_id: str, port: int) -> NodeView:
    lines = parse_cluster_nodes(f"{node_id} :{port}@{port + 1} myself,master - 0 0 0 connected\n")
    return NodeView(info={"cluster_state": "fail", "cluster_current_epoch": "0"}, lines=lines)


def test_a_formed_view_parses_roles_slots_and_bus_ports() -> None:
    lines = parse_cluster_nodes(FORMED)
    view = NodeView(
        info=parse_cluster_info("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"), lines=lines
    )
    assert view.me.node_id == "a1"
    assert view.me.bus_port == 17000
    assert lines[2].bus_port == 17002
    assert view.me.slots == ((0, 5460),)
    assert lines[2].slots == ((10923, 10923), (10924, 16383))
    assert lines[3].is_replica and lines[3].master_id == "a1"
    assert not lines[4].connected
    # The handshake entry is not a member yet.
    assert view.known_ids == frozenset({"a1", "b2", "c3", "d4", "e5"})
    assert view.slots_assigned == 16384 and view.state == "ok"


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


def test_health_names_the_nodes_that_do_not_answer() -> None:
    probes = [
        Probe(address=("127.0.0.1", 7000 + index), view=_fresh(f"n{index}", 7000))
        for index in range(2)
    ]
    probes.append(Probe(address=("127.0.0.1", 7009), view=None, error="ConnectionError"))
    health = assess(probes)
    assert (health.answering, health.total, health.formed, health.state_ok) == (2, 3, False, False)
    assert health.message == "2/3 Redis nodes answering; waiting for 127.0.0.1:7009."
