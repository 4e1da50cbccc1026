"""Health of a managed Redis Cluster, judged from what every node says.

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
from retention_operator.redis_cluster.slots import SLOT_COUNT
from retention_operator.redis_cluster.topology import NodeView


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
    """One serving master: its label (pod name), how many slots it holds, its replicas."""

    master: str
    slots: int
    replicas: tuple[str, ...]


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
    keys. ``released``: no node past the shape is a member any more.
    ``shards``: the serving masters, lowest slot first. ``message``: one
    sentence, what is awaited or ``cluster ok: ...``.
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

    @property
    def ok(self) -> bool:
        """True when formed as asked and every node reports ``cluster_state:ok``."""
        return self.formed and self.state_ok and self.settled


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
    within ``timeout`` seconds counts as not answering. Sends no writes.
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
        return replace(base, message=message)
    shards = _shards(views, names)
    if shape is None:
        formed = is_one_cluster(views, total=len(views)) and all(
            view.slots_assigned == SLOT_COUNT for view in views
        )
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
    message = _shape_message(layout, views, names, shape=shape, state_ok=state_ok, formed=formed)
    return replace(
        base,
        formed=formed,
        state_ok=state_ok,
        message=message,
        settled=not layout.steps_left and not layout.waiting and not layout.blocked,
        resharding=layout.resharding,
        released=released(views, keep=keep),
        shards=shards,
    )


def is_one_cluster(views: Sequence[NodeView], *, total: int) -> bool:
    """True if there are views and all of them know the same ``total`` members."""
    if not views:
        return False
    members = views[0].known_ids
    return len(members) == total and all(view.known_ids == members for view in views)


def _shards(views: Sequence[NodeView], names: Sequence[str]) -> tuple[ShardHealth, ...]:
    serving = sorted(
        (index for index, view in enumerate(views) if view.owned_slot_count() > 0),
        key=lambda index: min(views[index].me.slots),
    )
    return tuple(
        ShardHealth(
            master=names[index],
            slots=views[index].owned_slot_count(),
            replicas=tuple(
                names[j]
                for j, view in enumerate(views)
                if view.me.is_replica and view.me.master_id == views[index].me.node_id
            ),
        )
        for index in serving
    )


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
    return _ok(base.masters, base.replicas)


def _shape_message(
    layout: Layout,
    views: Sequence[NodeView],
    names: Sequence[str],
    *,
    shape: Shape,
    state_ok: bool,
    formed: bool,
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


def _ok(masters: int, replicas: int) -> str:
    counts = f"{_counted(masters, 'shard')}, {_counted(replicas, 'replica')}"
    return f"cluster ok: {counts}, {SLOT_COUNT} slots"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
