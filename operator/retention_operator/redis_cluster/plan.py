"""Who meets whom, and who learns new addresses, decided from the nodes' views (pure).

Each planner looks at the views of the nodes, in the caller's order (pod
ordinal order), and returns only steps that cannot lose data: meet nodes that
own no slots, tell nodes where members they know now are. An empty plan
means there is nothing to do. Callers: :mod:`.layout` (meets) and
:mod:`.converge` (readdressing); the rest of a cluster's life is planned in
:mod:`.layout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retention_operator.redis_cluster.slots import (
    count_slots,
)
from retention_operator.redis_cluster.topology import NodeView


@dataclass(frozen=True)
class MeetPlan:
    """Who joins whom. Indexes refer to the caller's list of nodes.

    ``anchor``: the node everybody meets. ``newcomers``: nodes to send
    CLUSTER MEET <anchor> to. ``fresh``: nodes that never joined anything and
    may get a distinct config epoch first. ``blocked``: nodes in another
    group that owns slots; merging two groups that both claim slots could
    hand slots (and their keys) to the wrong node, so they are left alone.
    """

    anchor: int
    newcomers: tuple[int, ...]
    fresh: tuple[int, ...]
    blocked: tuple[int, ...]


def plan_meets(views: Sequence[NodeView]) -> MeetPlan:
    """Plan the CLUSTER MEETs that bring every node into the anchor's group.

    The anchor is the node whose view holds the most assigned slots, then the
    most members, then the lowest index: node 0 for fresh nodes, and the
    surviving group when a bootstrap was interrupted. A node that knows the
    anchor is waiting for gossip and needs no MEET; one the anchor knows but
    that does not know the anchor (a node that was reset) gets one, which for
    a known node id only refreshes its address.
    """
    anchor = min(
        range(len(views)),
        key=lambda index: (
            -count_slots(views[index].assigned_ranges()),
            -len(views[index].known_ids),
            index,
        ),
    )
    anchor_view = views[anchor]
    newcomers: list[int] = []
    blocked: list[int] = []
    for index, view in enumerate(views):
        if index == anchor or anchor_view.me.node_id in view.known_ids:
            continue
        if view.assigned_ranges():
            blocked.append(index)
        else:
            newcomers.append(index)
    fresh = tuple(
        index
        for index in (anchor, *newcomers)
        if len(views[index].known_ids) == 1
        and views[index].config_epoch == 0
        and views[index].info.get("cluster_current_epoch", "0") == "0"
    )
    # Distinct epochs only help when every member starts fresh; a single one
    # left over would be the only change and buys nothing.
    return MeetPlan(
        anchor=anchor,
        newcomers=tuple(newcomers),
        fresh=fresh if len(fresh) > 1 else (),
        blocked=tuple(blocked),
    )


def plan_readdress(views: Sequence[NodeView], hosts: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: node ``i`` knows member ``j`` by an address ``j`` no longer has.

    ``hosts[j]`` is where node ``j`` answers now (its pod's IP). Pods come back
    with new IPs and keep their identity on their volumes; when all of them
    restart at once, none can reach the others at the addresses it kept, and
    the cluster stays down. A CLUSTER MEET of ``j``'s current address sent to
    ``i`` makes ``i`` update the member it already knows (same node id), so no
    data moves and no slot changes owner. Members only ``i`` knows of, and
    nodes in handshake, are left to :func:`plan_meets`.
    """
    where = {view.me.node_id: index for index, view in enumerate(views)}
    pairs = []
    for i, view in enumerate(views):
        for line in view.lines:
            j = where.get(line.node_id)
            if line.myself or line.in_handshake or j is None or j == i:
                continue
            if line.host != hosts[j]:
                pairs.append((i, j))
    return pairs
