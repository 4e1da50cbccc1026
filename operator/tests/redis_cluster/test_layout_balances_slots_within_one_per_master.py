"""Layout plans: the even split on a fresh cluster, balanced moves out and in, nothing extra.

Pure: views are built from text, the plan is applied to a model of the
cluster, and the plan of the result is checked to have nothing left.
"""

from __future__ import annotations

import itertools

import pytest

from retention_operator.redis_cluster.layout import Layout, plan_layout, released
from retention_operator.redis_cluster.slots import SLOT_COUNT, slot_ranges
from retention_operator.redis_cluster.topology import NodeView

from .conftest import cluster_views

Slots = dict[str, set[int]]


def _ranges(slots: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for slot in sorted(slots):
        if out and out[-1][1] == slot - 1:
            out[-1] = (out[-1][0], slot)
        else:
            out.append((slot, slot))
    return out


def _views(order: list[str], owned: Slots, masters: dict[str, str]) -> list[NodeView]:
    return cluster_views(order, slots={n: _ranges(s) for n, s in owned.items()}, masters=masters)


def _apply(layout: Layout, order: list[str], owned: Slots, masters: dict[str, str]) -> None:
    """What the mover does with the plan's slot steps, on the model."""
    for index, ranges in layout.assign.items():
        owned.setdefault(order[index], set()).update(
            slot for a, b in ranges for slot in range(a, b + 1)
        )
    for index, master in layout.replicate.items():
        masters[order[index]] = master
    for move in layout.moves:
        owned[order[move.source]] -= set(move.slots)
        owned.setdefault(order[move.target], set()).update(move.slots)


def _even(shards: int, order: list[str]) -> Slots:
    return {order[k]: set(range(a, b + 1)) for k, (a, b) in enumerate(slot_ranges(shards))}


def test_a_fresh_cluster_gets_the_even_split_then_its_replicas() -> None:
    order = [f"n{i}" for i in range(6)]
    layout = plan_layout(cluster_views(order), keep=6, shards=3, replicas=1)
    assert layout.assign == {0: [(0, 5461)], 1: [(5462, 10922)], 2: [(10923, 16383)]}
    # Replicas wait for their masters' slots: the mover assigns first, then reads again.
    owned: Slots = {}
    _apply(layout, order, owned, {})
    again = plan_layout(_views(order, owned, {}), keep=6, shards=3, replicas=1)
    assert again.replicate == {3: "n0", 4: "n1", 5: "n2"}
    assert not again.moves


def test_a_fourth_shard_takes_a_quarter_from_every_master_and_gets_a_replica() -> None:
    order = [f"n{i}" for i in range(8)]
    owned = _even(3, order)
    masters = {"n3": "n0", "n4": "n1", "n5": "n2"}
    layout = plan_layout(_views(order, owned, masters), keep=8, shards=4, replicas=1)
    assert [(s.index, s.target) for s in layout.masters] == [
        (0, 4096),
        (1, 4096),
        (2, 4096),
        (6, 4096),
    ]
    assert layout.replicate == {7: "n6"}
    assert [(m.source, m.target, len(m.slots)) for m in layout.moves] == [
        (0, 6, 1366),
        (1, 6, 1365),
        (2, 6, 1365),
    ]
    # Each master gives the top of its range, so what it keeps stays contiguous.
    assert layout.moves[0].slots == tuple(range(4096, 5462))
    assert layout.resharding and layout.slots_to_move == 4096


def test_one_shard_less_empties_the_leaving_master_first_and_lets_its_pods_go() -> None:
    order = [f"n{i}" for i in range(8)]
    owned = _even(4, [order[0], order[1], order[2], order[6]])
    masters = {"n3": "n0", "n4": "n1", "n5": "n2", "n7": "n6"}
    layout = plan_layout(_views(order, owned, masters), keep=6, shards=3, replicas=1)
    assert {m.source for m in layout.moves} == {6}
    assert sorted(s.target for s in layout.masters) == [5461, 5461, 5462]
    assert layout.leave == ()
    # Drained, the old master has turned into a replica of a receiver (Redis does so).
    _apply(layout, order, owned, masters)
    masters.update({"n6": "n2", "n7": "n2"})
    del owned["n6"]
    views = _views(order, owned, masters)
    done = plan_layout(views, keep=6, shards=3, replicas=1)
    assert not done.moves and not done.replicate
    assert done.leave == (6, 7)
    assert not released(views, keep=6)


@pytest.mark.parametrize(("before", "after"), list(itertools.permutations(range(1, 7), 2)))
def test_any_change_of_shards_is_balanced_within_one_slot_in_one_round(
    before: int, after: int
) -> None:
    # Replicas 0 so that any shard count fits the same pods: shards before, shards after.
    order = [f"n{i}" for i in range(max(before, after))]
    owned = _even(before, order)
    start = {node: len(slots) for node, slots in owned.items()}
    layout = plan_layout(_views(order, owned, {}), keep=after, shards=after, replicas=0)
    _apply(layout, order, owned, {})
    counts = sorted(len(owned.get(node, ())) for node in order[:after])
    assert counts[-1] - counts[0] <= 1 and sum(counts) == SLOT_COUNT
    assert all(not owned.get(node) for node in order[after:])
    again = plan_layout(_views(order, owned, {}), keep=after, shards=after, replicas=0)
    assert not again.moves and not again.assign
    # Each slot moved once, from a node that had more to one that had less.
    moved = sum(len(move.slots) for move in layout.moves)
    assert moved == sum(max(0, n - len(owned.get(node, ()))) for node, n in start.items())


def test_a_balanced_cluster_needs_nothing() -> None:
    order = [f"n{i}" for i in range(6)]
    masters = {"n3": "n0", "n4": "n1", "n5": "n2"}
    layout = plan_layout(_views(order, _even(3, order), masters), keep=6, shards=3, replicas=1)
    assert not layout.steps_left and not layout.waiting and not layout.blocked
    assert released(_views(order, _even(3, order), masters), keep=6)


def test_more_replicas_per_shard_attach_the_new_pods_to_each_master() -> None:
    order = [f"n{i}" for i in range(9)]
    masters = {"n3": "n0", "n4": "n1", "n5": "n2"}
    layout = plan_layout(_views(order, _even(3, order), masters), keep=9, shards=3, replicas=2)
    assert layout.replicate == {6: "n0", 7: "n1", 8: "n2"}
    assert not layout.moves


def test_fewer_replicas_per_shard_let_the_extra_pods_go_without_moving_a_slot() -> None:
    order = [f"n{i}" for i in range(6)]
    masters = {"n3": "n0", "n4": "n1", "n5": "n2"}
    layout = plan_layout(_views(order, _even(3, order), masters), keep=3, shards=3, replicas=0)
    assert not layout.moves
    assert layout.leave == (3, 4, 5)
