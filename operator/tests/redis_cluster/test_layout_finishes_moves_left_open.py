"""Slots an interrupted move left MIGRATING or IMPORTING come first, before any new move."""

from __future__ import annotations

from retention_operator.redis_cluster.layout import plan_layout
from retention_operator.redis_cluster.topology import NodeView, parse_cluster_nodes

from .conftest import cluster_views

FOUR = {"a": [(0, 5461)], "b": [(5462, 10922)], "c": [(10923, 16383)]}


def test_a_slot_open_on_both_sides_names_source_target_and_markers() -> None:
    order = ["a", "b", "c", "d"]
    views = cluster_views(order, slots=FOUR, markers={"a": "[5461->-d]", "d": "[5461-<-a]"})
    layout = plan_layout(views, keep=4, shards=4, replicas=0)
    (open_slot,) = layout.open_slots
    assert (open_slot.slot, open_slot.source, open_slot.target) == (5461, 0, 3)
    assert open_slot.markers == (0, 3)
    # Nothing else is planned until it is closed.
    assert layout.moves == () and layout.resharding
    assert layout.slots_to_move == 1


def test_a_slot_importing_only_is_open_towards_the_importing_node() -> None:
    order = ["a", "b", "c", "d"]
    views = cluster_views(order, slots=FOUR, markers={"d": "[7-<-a]"})
    (open_slot,) = plan_layout(views, keep=4, shards=4, replicas=0).open_slots
    assert (open_slot.slot, open_slot.source, open_slot.target, open_slot.markers) == (
        7,
        0,
        3,
        (3,),
    )


def test_a_slot_whose_target_already_owns_it_is_closed_on_the_old_source() -> None:
    # The target took the slot (SETSLOT NODE); the source still shows it migrating.
    order = ["a", "b", "c", "d"]
    slots = {"a": [(0, 5460)], "b": [(5462, 10922)], "c": [(10923, 16383)], "d": [(5461, 5461)]}
    views = cluster_views(order, slots=slots, markers={"a": "[5461->-d]"})
    (open_slot,) = plan_layout(views, keep=4, shards=4, replicas=0).open_slots
    assert open_slot.source == open_slot.target == 3


def test_markers_parse_from_cluster_nodes() -> None:
    text = "a 127.0.0.1:7000@7001 myself,master - 0 0 1 connected 0-9 [10->-b] [11-<-c]\n"
    view = NodeView(info={}, lines=parse_cluster_nodes(text))
    assert view.me.slots == ((0, 9),)
    assert view.me.migrating == ((10, "b"),)
    assert view.me.importing == ((11, "c"),)
