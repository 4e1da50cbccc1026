"""Health of a managed Redis Cluster, judged from what every node says.

A replica counts as attached once CLUSTER NODES names its master, but the
cluster is ok only when every replica is also linked and synced (INFO
replication, ``master_link_status:up``): a replica whose first sync has not
completed cannot fail over (Redis counts its data as old since forever), so
until then its shard has no usable copy.

:func:`cluster_health` is what the reconciler calls to fill the Redis part of
a stack's status (it sends no writes); :func:`assess` is the pure judgement
behind it, also used by :mod:`.converge` to report the state after a step.
Given the shape the spec asks for, the judgement is the layout plan itself
(:func:`.layout.plan_layout`): what the status says is pending is exactly
what the next reconcile would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from retention_operator.redis_cluster.connection import Probe, probe_all
from retention_operator.redis_cluster.layout import Layout, plan_layout, released
from retention_operator.redis_cluster.slots import SLOT_COUNT, SlotRange, count_slots
from retention_operator.redis_cluster.topology import NodeLine, NodeView


@dataclass(frozen=True)
class Shape:
    """What the spec asks for: ``shards`` masters with ``replicas`` replicas each."""

    shards: int
    replicas: int

    @property
    def nodes(self) -> int:
        """How many pods the shape keeps (the first ones, in ordinal order)."""
        return self.shards * (1 + self.replicas)


@dataclass(frozen=True)
class ShardHealth:
    """One master serving slots: its label (pod name), its slots, its replicas.

    ``failing``: the master does not answer or the others mark it failed; its
    slots are still its own until a replica takes them over. ``syncing``:
    replicas of it that answer but are not linked and synced (INFO
    replication), so they could not take over yet.
    """

    master: str
    slots: int
    replicas: tuple[str, ...]
    ranges: tuple[SlotRange, ...] = ()
    failing: bool = False
    syncing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterHealth:
    """The state of a Redis Cluster as its nodes report it.

    ``answering``/``total``: nodes that answered CLUSTER INFO and CLUSTER NODES,
    out of those asked. ``formed``: the nodes that stay know each other and
    each of them sees all 16384 slots assigned. ``state_ok``: every node
    answered and every node that stays reports ``cluster_state:ok`` (a node
    past the shape that has left is alone and reports ``fail``). ``masters``: answering nodes
    that are masters serving at least one slot (a fresh, empty node is not
    counted). ``replicas``: answering nodes that replicate a master.
    ``settled``: nothing is left to do for the shape asked (always True when
    no shape is given). ``resharding``: slots are still to move with their
    keys; ``moving`` says which (``moving 1365 of 5461 slots to shard 4 of 4
    (pod-6)``), "" when none. ``released``: no node past the shape is a member any more.
    ``shards``: the masters serving slots, lowest slot first, as the
    answering nodes report them (a master that does not answer is there,
    ``failing``, until a replica takes its slots). ``syncing``: the
    replicas (of the nodes that stay) that answer but are not linked and
    synced, each with its master (``pod-4 is syncing from pod-1``), "" when
    every one is. ``message``: one sentence, what is awaited or ``cluster
    ok: ...``.
    """

    answering: int
    total: int
    formed: bool
    state_ok: bool
    masters: int
    replicas: int
    message: str
    settled: bool = True
    resharding: bool = False
    released: bool = True
    shards: tuple[ShardHealth, ...] = ()
    moving: str = ""
    syncing: str = ""

    @property
    def ok(self) -> bool:
        """True when formed as asked, every node is ``cluster_state:ok``, every replica synced."""
        return self.formed and self.state_ok and self.settled and not self.syncing


async def cluster_health(
    *,
    nodes: list[tuple[str, int]],
    password: str | None,
    shape: Shape | None = None,
    labels: Sequence[str] | None = None,
    timeout: float = 2.0,  # noqa: ASYNC109
) -> ClusterHealth:
    """Read every node concurrently and judge the cluster; never raises for I/O errors.

    A node that cannot be reached, rejects ``password`` or does not answer
    within ``timeout`` seconds counts as not answering. Sends no writes
    (CLUSTER INFO, CLUSTER NODES, INFO replication).
    """
    probes = await probe_all(nodes, password=password, seconds=timeout)
    return assess(probes, shape=shape, labels=labels)


def assess(
    probes: Sequence[Probe],
    *,
    shape: Shape | None = None,
    labels: Sequence[str] | None = None,
) -> ClusterHealth:
    """Judge the cluster from the probes of all its nodes (pure).

    With ``shape`` the first ``shape.nodes`` probes are the nodes that stay,
    and the message says the next thing the layout plan would do; without,
    any count that is formed is fine. ``labels`` name the nodes in messages
    (``host:port`` by default).
    """
    names = list(labels) if labels is not None else [probe.label for probe in probes]
    views = [probe.view for probe in probes if probe.view is not None]
    masters = sum(1 for view in views if view.owned_slot_count() > 0)
    replicas = sum(1 for view in views if view.me.is_replica)
    state_ok = len(views) == len(probes) and all(view.state == "ok" for view in views)
    base = ClusterHealth(
        answering=len(views),
        total=len(probes),
        formed=False,
        state_ok=state_ok,
        masters=masters,
        replicas=replicas,
        message="",
        settled=shape is None,
    )
    if len(views) < len(probes):
        silent = ", ".join(n for n, probe in zip(names, probes, strict=True) if not probe.answering)
        message = f"{len(views)}/{len(probes)} Redis nodes answering; waiting for {silent}."
        return replace(base, message=message, shards=_shards(probes, names))
    shards = _shards(probes, names)
    if shape is None:
        formed = is_one_cluster(views, total=len(views)) and all(
            view.slots_assigned == SLOT_COUNT for view in views
        )
        syncing = _syncing(views, names)
        base = replace(base, syncing=syncing)
        message = _message(views, names, formed=formed, base=base)
        return replace(base, formed=formed, message=message, shards=shards)
    keep = shape.nodes
    layout = plan_layout(views, keep=keep, shards=shape.shards, replicas=shape.replicas)
    staying = views[:keep]
    staying_ids = {view.me.node_id for view in staying}
    formed = all(
        staying_ids <= view.known_ids and view.slots_assigned == SLOT_COUNT for view in staying
    )
    state_ok = all(view.state == "ok" for view in staying)
    syncing = _syncing(views, names, keep=keep)
    message = _shape_message(
        layout, views, names, shape=shape, state_ok=state_ok, formed=formed, syncing=syncing
    )
    return replace(
        base,
        formed=formed,
        state_ok=state_ok,
        syncing=syncing,
        message=message,
        settled=not layout.steps_left and not layout.waiting and not layout.blocked,
        resharding=layout.resharding,
        released=released(views, keep=keep),
        shards=shards,
        moving=_moving(layout, names, shards=shape.shards) if layout.resharding else "",
    )


def is_one_cluster(views: Sequence[NodeView], *, total: int) -> bool:
    """True if there are views and all of them know the same ``total`` members."""
    if not views:
        return False
    members = views[0].known_ids
    return len(members) == total and all(view.known_ids == members for view in views)


def _shards(probes: Sequence[Probe], names: Sequence[str]) -> tuple[ShardHealth, ...]:
    """The masters serving slots, from each answering node's own line and, for the others,
    from what the answering nodes say of them (slots a replica has taken over excluded)."""
    views = [(index, probe.view) for index, probe in enumerate(probes) if probe.view is not None]
    by_address = {probe.label: names[index] for index, probe in enumerate(probes)}
    label = {view.me.node_id: names[index] for index, view in views}
    own = {view.me.node_id: view.me for _, view in views}
    seen: dict[str, NodeLine] = {}
    failing: set[str] = set()
    for _, view in views:
        for line in view.lines:
            if line.in_handshake or line.node_id in own:
                continue
            seen.setdefault(line.node_id, line)
            label.setdefault(line.node_id, _line_label(line, by_address))
            if line.failing:
                failing.add(line.node_id)
    lines = {**seen, **own}
    unsynced = {view.me.node_id for _, view in views if view.me.is_replica and not view.synced}
    served = {
        slot
        for line in own.values()
        if line.is_master
        for first, last in line.slots
        for slot in range(first, last + 1)
    }
    masters = []
    for node_id, line in lines.items():
        if not (line.is_master and line.slots):
            continue
        if node_id not in own and any(first in served for first, _ in line.slots):
            continue  # a replica has taken these slots over
        masters.append(line)
    masters.sort(key=lambda line: min(line.slots))
    return tuple(
        ShardHealth(
            master=label[line.node_id],
            slots=count_slots(line.slots),
            replicas=tuple(
                sorted(
                    (
                        label[other.node_id]
                        for other in lines.values()
                        if other.is_replica and other.master_id == line.node_id
                    ),
                    key=lambda name: (_ordinal(names, name), name),
                )
            ),
            ranges=tuple(sorted(line.slots)),
            failing=line.node_id not in own or line.node_id in failing,
            syncing=tuple(
                sorted(
                    (
                        label[other.node_id]
                        for other in lines.values()
                        if other.node_id in unsynced and other.master_id == line.node_id
                    ),
                    key=lambda name: (_ordinal(names, name), name),
                )
            ),
        )
        for line in masters
    )


def _syncing(views: Sequence[NodeView], names: Sequence[str], *, keep: int | None = None) -> str:
    """``pod-4 is syncing from pod-1, ...``: each replica not linked and synced, "" if none.

    ``views`` are every node, in the order of ``names``; the first ``keep``
    (all by default) are judged. A replica whose link has not been up since
    it became this master's replica, or that reads its master's data
    (``master_sync_in_progress:1``), is syncing: during the master's
    ``repl-diskless-sync-delay`` the master has not yet answered its PSYNC,
    so INFO shows the link down and no sync in progress. One whose link was
    up and is down is said to have lost it. No count of seconds: the
    message goes into the status, which is written when it changes.
    """
    label = {view.me.node_id: names[index] for index, view in enumerate(views)}
    parts = []
    for index, view in enumerate(views[:keep]):
        me = view.me
        if not me.is_replica or view.synced:
            continue
        master = label.get(me.master_id or "", f"node {(me.master_id or '?')[:8]}")
        if view.sync_in_progress or view.link_down_seconds is None:
            parts.append(f"{names[index]} is syncing from {master}")
        else:
            parts.append(f"{names[index]} lost its link to {master}")
    return ", ".join(parts)


def _ordinal(names: Sequence[str], name: str) -> int:
    return names.index(name) if name in names else len(names)


def _line_label(line: NodeLine, by_address: dict[str, str]) -> str:
    """Name a node that did not answer by its announced hostname or address, as a pod."""
    host = line.hostname.split(".")[0]
    if host in by_address.values():
        return host
    return by_address.get(line.address.split("@")[0], f"node {line.node_id[:8]}")


def _message(
    views: Sequence[NodeView], names: Sequence[str], *, formed: bool, base: ClusterHealth
) -> str:
    total = len(views)
    largest = max(len(view.known_ids) for view in views)
    if largest > total:
        return (
            f"The nodes know {largest} cluster members but {total} were given; "
            "waiting for the stale members to be forgotten (CLUSTER FORGET)."
        )
    if not is_one_cluster(views, total=total):
        smallest = min(len(view.known_ids) for view in views)
        return f"Waiting for all {total} nodes to know each other (one knows only {smallest})."
    assigned = min(view.slots_assigned for view in views)
    if not formed:
        return f"Waiting for slot assignment: {assigned} of {SLOT_COUNT} slots assigned."
    if not base.state_ok:
        return _not_ok(views, names)
    if base.syncing:
        return _not_synced(base.syncing)
    return _ok(base.masters, base.replicas)


def _shape_message(
    layout: Layout,
    views: Sequence[NodeView],
    names: Sequence[str],
    *,
    shape: Shape,
    state_ok: bool,
    formed: bool,
    syncing: str,
) -> str:
    """The next thing the plan does, or what it waits for, in one sentence."""
    keep = shape.nodes
    if layout.blocked:
        return f"Cannot go on: {layout.blocked}."
    if layout.forget:
        stale = sorted({node_id[:8] for _, node_id in layout.forget})
        return f"Forgetting node {', '.join(stale)}: no pod has it any more."
    if layout.meets is not None:
        smallest = min(len(view.known_ids) for view in views[:keep])
        return f"Waiting for all {keep} nodes to know each other (one knows only {smallest})."
    if layout.resharding:
        return "Resharding: " + _moving(layout, names, shards=shape.shards)
    if layout.failovers:
        heirs = ", ".join(names[index] for index in layout.failovers)
        return f"Waiting for {heirs} to take over from a leaving master."
    if layout.resets:
        return f"Turning {', '.join(names[i] for i in layout.resets)} into an empty master."
    if layout.assign:
        assigned = min(view.slots_assigned for view in views[:keep])
        return f"Waiting for slot assignment: {assigned} of {SLOT_COUNT} slots assigned."
    if layout.replicate:
        want = shape.shards * shape.replicas
        attached = want - len(layout.replicate)
        return f"Waiting for replicas: {attached} of {want} attached."
    if layout.leave:
        return f"Removing {', '.join(names[i] for i in layout.leave)} from the cluster."
    if layout.waiting:
        return f"Waiting for {layout.waiting}."
    if not formed:
        assigned = min(view.slots_assigned for view in views[:keep])
        return f"Waiting for slot assignment: {assigned} of {SLOT_COUNT} slots assigned."
    if not state_ok:
        return _not_ok(views[:keep], names)
    if syncing:
        return _not_synced(syncing)
    return _ok(shape.shards, shape.shards * shape.replicas)


def _moving(layout: Layout, names: Sequence[str], *, shards: int) -> str:
    """``moving 1365 of 4096 slots to shard 4 (pod-6)``, or the sources when several receive."""
    shares = {share.index: (number, share) for number, share in enumerate(layout.masters, 1)}
    targets = sorted({move.target for move in layout.moves})
    sources = sorted({move.source for move in layout.moves})
    left = layout.slots_to_move
    if not layout.moves:
        return f"finishing {left} slot moves an interrupted run left open"
    if len(targets) == 1 and targets[0] in shares:
        number, share = shares[targets[0]]
        return (
            f"moving {left} of {share.target} slots to shard {number} of {shards} "
            f"({names[share.index]})"
        )
    if len(sources) == 1:
        return f"moving {left} slots from {names[sources[0]]} to {len(targets)} masters"
    return f"moving {left} slots between {len(sources) + len(targets)} masters"


def _not_ok(views: Sequence[NodeView], names: Sequence[str]) -> str:
    failing = [names[index] for index, view in enumerate(views) if view.state != "ok"]
    return f"Waiting for cluster_state:ok on {', '.join(failing)}."


def _not_synced(syncing: str) -> str:
    return f"Waiting for replicas to sync: {syncing}."


def _ok(masters: int, replicas: int) -> str:
    counts = f"{_counted(masters, 'shard')}, {_counted(replicas, 'replica')}"
    return f"cluster ok: {counts}, {SLOT_COUNT} slots"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
