"""CLUSTER NODES text becomes members, roles, bus ports and slots."""

from __future__ import annotations

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
