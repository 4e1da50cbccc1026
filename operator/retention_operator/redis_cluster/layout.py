"""The whole life of a managed cluster as one pure plan: who serves, which slots move where.

:func:`plan_layout` looks at the views of every pod (ordinal order) and
returns every step still needed to reach ``shards`` masters holding a
balanced share of the slots, ``replicas`` replicas each, on the first
``keep`` pods, with the pods past ``keep`` out of the cluster. The caller
(:mod:`.converge`) does the first step that is not empty, reads the views
again and plans again, so an interrupted run is finished by the next one from
what the nodes report: nothing is remembered between runs.

The steps, in the order they are done:

1. ``forget``: members no pod has any more (a volume wiped, a pod gone).
2. ``meets``: pods of ``keep`` that are not in the cluster (new, or replaced).
   ``takeovers``: the replica of a master that no pod has any more (gone
   for certain, since every pod answered) takes its slots (CLUSTER FAILOVER
   FORCE, Redis' own election): a node back at the same address leaves the
   old id flagged ``noaddr``, which Redis never marks failed, so no failover
   would come by itself.
3. ``open_slots``: slots left MIGRATING/IMPORTING by an interrupted move.
4. ``failovers``: a replica that stays takes over from a master that leaves.
5. ``resets``: a replica that stays is turned into an empty master (more shards, no new pod).
6. ``assign``: slots nobody owns go to the masters short of their share.
7. ``replicate``: empty nodes and misplaced replicas attach where a master lacks one.
8. ``moves``: slots move, with their keys, from masters over their share to those under.
9. ``leave``: the pods past ``keep`` are forgotten by all and reset.

Nothing here loses data: a slot some view believes owned is never assigned,
a failed master with a replica is left to Redis' own failover, and a pod
past ``keep`` leaves only once it holds no slot and no staying pod
replicates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from retention_operator.redis_cluster.plan import MeetPlan, plan_meets
from retention_operator.redis_cluster.slots import SLOT_COUNT, SlotRange
from retention_operator.redis_cluster.topology import NodeLine, NodeView


@dataclass(frozen=True)
class SlotMove:
    """Slots to move, with their keys, from node ``source`` to node ``target`` (indexes)."""

    source: int
    target: int
    slots: tuple[int, ...]


@dataclass(frozen=True)
class OpenSlot:
    """A slot an interrupted move left open.

    ``source``: the node that owns it now; ``target``: the node IMPORTING it,
    or the one a node migrates it to; either is None when no pod has that id.
    ``markers``: the nodes that show it MIGRATING or IMPORTING. The mover
    completes the move when the target holds keys of the slot or stays a
    master, and rolls it back (SETSLOT STABLE) otherwise, which is safe
    because then every key is still on the source.
    """

    slot: int
    source: int | None
    target: int | None
    markers: tuple[int, ...]


@dataclass(frozen=True)
class MasterShare:
    """One master the layout keeps: its index, the slots it holds now, and its share."""

    index: int
    holding: int
    target: int


@dataclass(frozen=True)
class Layout:
    """Everything still to do; see the module docstring for the order.

    ``masters``: the masters that stay, with their shares. ``waiting``: what
    only time (gossip, Redis' own failover) can bring, "" if nothing.
    ``blocked``: why no step can go on without a hand, "" if nothing.
    """

    masters: tuple[MasterShare, ...]
    forget: tuple[tuple[int, str], ...] = ()
    meets: MeetPlan | None = None
    takeovers: tuple[int, ...] = ()
    open_slots: tuple[OpenSlot, ...] = ()
    failovers: tuple[int, ...] = ()
    resets: tuple[int, ...] = ()
    assign: dict[int, list[SlotRange]] = field(default_factory=dict)
    replicate: dict[int, str] = field(default_factory=dict)
    moves: tuple[SlotMove, ...] = ()
    leave: tuple[int, ...] = ()
    waiting: str = ""
    blocked: str = ""

    @property
    def steps_left(self) -> bool:
        """True while some step is planned (a MEET counts only for its newcomers)."""
        meets = self.meets is not None and bool(self.meets.newcomers)
        return bool(
            self.forget
            or meets
            or self.takeovers
            or self.open_slots
            or self.failovers
            or self.resets
            or self.assign
            or self.replicate
            or self.moves
            or self.leave
        )

    @property
    def resharding(self) -> bool:
        """True while slots are to move with their keys (open ones included)."""
        return bool(self.moves or self.open_slots)

    @property
    def slots_to_move(self) -> int:
        return sum(len(move.slots) for move in self.moves) + len(self.open_slots)


@dataclass
class _Cluster:
    """The facts every step is planned from, computed once per plan."""

    views: Sequence[NodeView]
    keep: int
    ids: list[str]
    where: dict[str, int]
    owned: dict[int, list[int]]

    @classmethod
    def read(cls, views: Sequence[NodeView], keep: int) -> _Cluster:
        ids = [view.me.node_id for view in views]
        owned = {
            index: _expand(view.me.slots)
            for index, view in enumerate(views)
            if view.me.is_master and view.me.slots
        }
        return cls(views, keep, ids, {node_id: i for i, node_id in enumerate(ids)}, owned)

    @property
    def staying(self) -> range:
        return range(self.keep)

    @property
    def leaving(self) -> range:
        return range(self.keep, len(self.views))

    def count(self, index: int) -> int:
        return len(self.owned.get(index, ()))

    def master_of(self, index: int) -> str | None:
        me = self.views[index].me
        return me.master_id if me.is_replica else None

    def replicas_of(self, index: int, among: range) -> list[int]:
        return self.replicas_of_id(self.ids[index], among)

    def replicas_of_id(self, node_id: str, among: range) -> list[int]:
        return [j for j in among if self.master_of(j) == node_id]


def plan_layout(views: Sequence[NodeView], *, keep: int, shards: int, replicas: int) -> Layout:
    """Plan every step from the views of all pods; see the module docstring.

    ``views`` are in pod ordinal order; the first ``keep`` pods stay and
    ``keep`` is ``shards * (1 + replicas)``. Raises ValueError otherwise, or
    when there are fewer views than ``keep``.
    """
    if shards < 1 or replicas < 0 or keep != shards * (1 + replicas) or len(views) < keep:
        raise ValueError(
            f"{len(views)} nodes cannot keep {keep} for {shards} shards with {replicas} replicas"
        )
    cluster = _Cluster.read(views, keep)
    forget, waiting = _plan_forget(cluster)
    staying_ids = {cluster.ids[i] for i in cluster.staying}
    joined = all(staying_ids <= views[i].known_ids for i in cluster.staying)
    if forget or not joined:
        meets = None if joined else plan_meets(views[:keep])
        blocked = ""
        if meets is not None and meets.blocked:
            labels = ", ".join(str(index) for index in meets.blocked)
            blocked = f"nodes {labels} belong to another cluster that owns slots"
        return Layout(
            masters=(),
            forget=forget,
            meets=meets,
            waiting=waiting or "all nodes to know each other",
            blocked=blocked,
        )
    stale = _stale_owner(cluster)
    if stale is not None:
        # A member no pod has still serves slots (its replica is about to take
        # over): until then a node in its place must not take its replica (which
        # would drop the only copy) nor slots.
        return Layout(
            masters=(),
            takeovers=_plan_takeovers(cluster),
            waiting=waiting or f"slots of node {stale[:8]} to be served",
        )
    conflict = _conflicting_slot(cluster)
    if conflict is not None:
        return Layout(masters=(), waiting=f"the nodes to agree on the owner of slot {conflict}")
    masters, failovers = _choose_masters(cluster, shards)
    shares = _shares(cluster, masters, failovers)
    open_slots = _open_slots(cluster)
    short = shards - len(masters)
    resets = _plan_resets(cluster, masters, short) if short else ()
    if open_slots or failovers or short:
        return Layout(
            masters=shares,
            open_slots=open_slots,
            failovers=failovers,
            resets=resets,
            waiting=waiting,
            blocked="" if resets or not short else f"no node is left to serve {short} more shards",
        )
    assign = _plan_assign(cluster, shares)
    replicate = _plan_replicas(cluster, shares, replicas)
    moves = () if assign else _plan_moves(cluster, shares)
    leave = () if (assign or moves) else _plan_leave(cluster)
    blocked = ""
    if not (assign or moves or leave) and _leavers_hold_data(cluster):
        blocked = "a leaving node still serves slots or has a staying replica"
    return Layout(
        masters=shares,
        assign=assign,
        replicate=replicate,
        moves=moves,
        leave=leave,
        waiting=waiting,
        blocked=blocked,
    )


def released(views: Sequence[NodeView], *, keep: int) -> bool:
    """True when no pod past ``keep`` is a member any more: the StatefulSet may shrink.

    Each of them knows only itself and no staying pod knows it.
    """
    cluster = _Cluster.read(views, keep)
    return not _plan_leave(cluster) and not any(cluster.count(i) for i in cluster.leaving)


def _plan_forget(cluster: _Cluster) -> tuple[tuple[tuple[int, str], ...], str]:
    """CLUSTER FORGET of members that match no pod; and what is awaited before forgetting."""
    views = cluster.views
    known = {line.node_id for view in views for line in view.lines if not line.in_handshake}
    pairs: list[tuple[int, str]] = []
    waiting = ""
    for stale in sorted(known - set(cluster.ids)):
        seen = [(i, line) for i, view in enumerate(views) for line in _lines_of(view, stale)]
        owns = any(line.is_master and line.slots for _, line in seen)
        if owns and any(cluster.master_of(i) == stale for i in range(len(views))):
            # Its replica is about to take over (Redis' own failover); forgetting
            # the master now could cost the replica its votes.
            waiting = waiting or f"a replica to take over from failed node {stale[:8]}"
            continue
        if not all(line.failing for _, line in seen):
            waiting = waiting or f"the cluster to mark node {stale[:8]} failed"
            continue
        # A node cannot forget its own master; it is re-pointed first (replicate).
        pairs += [(i, stale) for i, _ in seen if cluster.master_of(i) != stale]
    return tuple(pairs), waiting


def _stale_owner(cluster: _Cluster) -> str | None:
    """A member that matches no pod but serves slots in some node's view, or None."""
    pods = set(cluster.ids)
    for view in cluster.views:
        for line in view.lines:
            if line.node_id not in pods and line.is_master and line.slots and not line.in_handshake:
                return line.node_id
    return None


def _plan_takeovers(cluster: _Cluster) -> tuple[int, ...]:
    """Staying replicas of members no pod has that still serve slots, to take them over.

    Every pod answers when a plan is made, so such a member is gone for
    certain; once every node that knows it sees it failing, its first
    staying replica is asked to take over.
    """
    pods = set(cluster.ids)
    heirs: list[int] = []
    seen: set[str] = set()
    for view in cluster.views:
        for line in view.lines:
            if line.node_id in pods or line.node_id in seen or not (line.is_master and line.slots):
                continue
            seen.add(line.node_id)
            failing = all(
                other.failing for v in cluster.views for other in _lines_of(v, line.node_id)
            )
            replicas = cluster.replicas_of_id(line.node_id, cluster.staying)
            if failing and replicas:
                heirs.append(replicas[0])
    return tuple(heirs)


def _lines_of(view: NodeView, node_id: str) -> list[NodeLine]:
    return [line for line in view.lines if line.node_id == node_id and not line.in_handshake]


def _conflicting_slot(cluster: _Cluster) -> int | None:
    """A slot two masters both claim as their own (Redis settles it by epoch), or None."""
    seen: set[int] = set()
    for slots in cluster.owned.values():
        for slot in slots:
            if slot in seen:
                return slot
            seen.add(slot)
    return None


def _choose_masters(cluster: _Cluster, shards: int) -> tuple[list[int], tuple[int, ...]]:
    """The masters that stay (at most ``shards``, in shard order) and replicas that take over.

    Staying masters that serve slots come first, most slots first; then a
    staying replica of a leaving master takes over (no data moves); then
    empty staying masters, lowest ordinal first.
    """
    staying_owners = sorted(
        (i for i in cluster.staying if cluster.count(i)), key=lambda i: (-cluster.count(i), i)
    )
    masters = staying_owners[:shards]
    failovers: list[int] = []
    leaving_owners = sorted(
        (i for i in cluster.leaving if cluster.count(i)), key=lambda i: (-cluster.count(i), i)
    )
    for owner in leaving_owners:
        if len(masters) >= shards:
            break
        heirs = cluster.replicas_of(owner, cluster.staying)
        if heirs:
            masters.append(heirs[0])
            failovers.append(heirs[0])
    for index in cluster.staying:
        if len(masters) >= shards:
            break
        view = cluster.views[index]
        if view.me.is_master and not cluster.count(index) and index not in masters:
            masters.append(index)
    return masters, tuple(failovers)


def _shares(
    cluster: _Cluster, masters: list[int], failovers: tuple[int, ...]
) -> tuple[MasterShare, ...]:
    """Each master's share: 16384 split evenly, the odd slots to those holding most now."""
    if not masters:
        return ()
    holding = {}
    for index in masters:
        if index in failovers:
            holding[index] = cluster.count(cluster.where.get(cluster.master_of(index) or "", -1))
        else:
            holding[index] = cluster.count(index)
    base, extra = divmod(SLOT_COUNT, len(masters))
    ranked = sorted(masters, key=lambda index: (-holding[index], masters.index(index)))
    bonus = set(ranked[:extra])
    return tuple(
        MasterShare(index=i, holding=holding[i], target=base + (1 if i in bonus else 0))
        for i in masters
    )


def _open_slots(cluster: _Cluster) -> tuple[OpenSlot, ...]:
    owner = {slot: index for index, slots in cluster.owned.items() for slot in slots}
    targets: dict[int, int | None] = {}
    markers: dict[int, list[int]] = {}
    for index, view in enumerate(cluster.views):
        if not view.me.is_master:
            continue
        for slot, target_id in view.me.migrating:
            targets.setdefault(slot, cluster.where.get(target_id))
            markers.setdefault(slot, []).append(index)
        for slot, _ in view.me.importing:
            # The importing node is the target, whatever a migrating node says.
            targets[slot] = index
            markers.setdefault(slot, []).append(index)
    return tuple(
        OpenSlot(slot=slot, source=owner.get(slot), target=targets[slot], markers=tuple(found))
        for slot, found in sorted(markers.items())
    )


def _plan_resets(cluster: _Cluster, masters: list[int], short: int) -> tuple[int, ...]:
    """Staying replicas to reset into empty masters when no empty node is left for a shard.

    A replica holds a copy only, so resetting it loses nothing. Replicas of
    the master with the most replicas go first, the highest ordinal first.
    """
    candidates = []
    for index in cluster.staying:
        master = cluster.master_of(index)
        if master is None or index in masters:
            continue
        siblings = len(cluster.replicas_of(cluster.where.get(master, index), cluster.staying))
        candidates.append((-siblings, -index))
    return tuple(-index for _, index in sorted(candidates)[:short])


def _plan_assign(cluster: _Cluster, shares: tuple[MasterShare, ...]) -> dict[int, list[SlotRange]]:
    """Slots no view believes owned, to the masters short of their share, in shard order."""
    ranges = [rng for view in cluster.views for rng in view.assigned_ranges()]
    taken = {slot for rng in ranges for slot in _span(rng)}
    free = [slot for slot in range(SLOT_COUNT) if slot not in taken]
    assign: dict[int, list[int]] = {}
    cursor = 0
    for share in shares:
        room = share.target - share.holding
        if room <= 0 or cursor >= len(free):
            continue
        assign[share.index] = free[cursor : cursor + room]
        cursor += room
    return {index: _ranges(slots) for index, slots in assign.items()}


def _plan_replicas(
    cluster: _Cluster, shares: tuple[MasterShare, ...], replicas: int
) -> dict[int, str]:
    """Attach every staying node that is not a master to a master short of replicas.

    Free are: empty masters that are not to serve, replicas of a master that
    serves nothing (or is gone), and replicas beyond ``replicas`` of one master.
    A replica of a master that still serves slots stays with it until those
    slots have moved, so no shard is without its copy meanwhile.
    """
    masters = [share.index for share in shares]
    master_ids = {cluster.ids[index]: index for index in masters}
    attached = {index: cluster.replicas_of(index, cluster.staying) for index in masters}
    free: list[int] = []
    for index in cluster.staying:
        if index in masters:
            continue
        me = cluster.views[index].me
        if me.is_master:
            if not cluster.count(index):
                free.append(index)
            continue
        master = me.master_id or ""
        if master in master_ids:
            continue
        if not cluster.count(cluster.where.get(master, -1)):
            free.append(index)
    for index in masters:
        free += attached[index][replicas:]
    need = {index: replicas - len(attached[index][:replicas]) for index in masters}
    plan: dict[int, str] = {}
    for index in sorted(free):
        target = max(masters, key=lambda m: (need[m], -masters.index(m)), default=None)
        if target is None or need[target] <= 0:
            break
        plan[index] = cluster.ids[target]
        need[target] -= 1
    return plan


def _plan_moves(cluster: _Cluster, shares: tuple[MasterShare, ...]) -> tuple[SlotMove, ...]:
    """Pair what each source gives with what each master lacks, in shard order.

    A node that does not stay a master gives all its slots; a master over
    its share gives its highest slots, so what it keeps stays contiguous.
    """
    masters = {share.index: share for share in shares}
    giving: list[tuple[int, list[int]]] = []
    for index in sorted(cluster.owned):
        if index not in masters:
            giving.append((index, cluster.owned[index]))
    for share in shares:
        excess = share.holding - share.target
        if excess > 0:
            giving.append((share.index, cluster.owned[share.index][-excess:]))
    lacking = [[share.index, share.target - share.holding] for share in shares]
    moves: dict[tuple[int, int], list[int]] = {}
    for source, slots in giving:
        for slot in slots:
            while lacking and lacking[0][1] <= 0:
                lacking.pop(0)
            if not lacking:
                break
            moves.setdefault((source, lacking[0][0]), []).append(slot)
            lacking[0][1] -= 1
    return tuple(
        SlotMove(source=source, target=target, slots=tuple(slots))
        for (source, target), slots in moves.items()
    )


def _plan_leave(cluster: _Cluster) -> tuple[int, ...]:
    """Leaving pods that are still members, once none holds slots or a staying replica."""
    if _leavers_hold_data(cluster):
        return ()
    staying_known = set().union(*(cluster.views[i].known_ids for i in cluster.staying))
    return tuple(
        index
        for index in cluster.leaving
        if cluster.ids[index] in staying_known or len(cluster.views[index].known_ids) > 1
    )


def _leavers_hold_data(cluster: _Cluster) -> bool:
    leaving_ids = {cluster.ids[i] for i in cluster.leaving}
    return any(cluster.count(i) for i in cluster.leaving) or any(
        cluster.master_of(i) in leaving_ids for i in cluster.staying
    )


def _expand(ranges: Sequence[SlotRange]) -> list[int]:
    return [slot for rng in sorted(ranges) for slot in _span(rng)]


def _span(rng: SlotRange) -> range:
    return range(rng[0], rng[1] + 1)


def _ranges(slots: Sequence[int]) -> list[SlotRange]:
    """Contiguous inclusive ranges of sorted ``slots``."""
    out: list[SlotRange] = []
    for slot in slots:
        if out and out[-1][1] == slot - 1:
            out[-1] = (out[-1][0], slot)
        else:
            out.append((slot, slot))
    return out
