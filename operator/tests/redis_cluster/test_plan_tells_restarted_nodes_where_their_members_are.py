"""Pods restarted together come back with new IPs: each node learns where its members are now."""

from __future__ import annotations

from retention_operator.redis_cluster.plan import plan_readdress
from retention_operator.redis_cluster.topology import NodeView, parse_cluster_nodes


def _view(me: str, members: dict[str, str]) -> NodeView:
    lines = "".join(
        f"{node_id} {ip}:6379@16379,{node_id}.redis {'myself,' if node_id == me else ''}master"
        f" - 0 0 1 {'connected' if node_id == me else 'disconnected'}\n"
        for node_id, ip in members.items()
    )
    return NodeView(info={}, lines=parse_cluster_nodes(lines))


def test_every_node_learns_the_new_address_of_every_member() -> None:
    old = {"a": "10.64.0.5", "b": "10.64.0.6", "c": "10.64.0.7"}
    now = ["10.64.0.15", "10.64.0.16", "10.64.0.17"]
    # Each node kept its id and its members' old addresses; it knows its own new one.
    views = [_view(me, {**old, me: now[index]}) for index, me in enumerate(old)]
    assert sorted(plan_readdress(views, now)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]


def test_a_cluster_whose_addresses_are_current_needs_nothing() -> None:
    members = {"a": "10.64.0.5", "b": "10.64.0.6"}
    views = [_view(me, members) for me in members]
    assert plan_readdress(views, list(members.values())) == []


def test_a_member_only_one_node_knows_is_left_to_the_meets() -> None:
    # Node 1 never met node 0: nothing to readdress, plan_meets brings them together.
    views = [_view("a", {"a": "10.64.0.5"}), _view("b", {"b": "10.64.0.6"})]
    assert plan_readdress(views, ["10.64.0.5", "10.64.0.6"]) == []
