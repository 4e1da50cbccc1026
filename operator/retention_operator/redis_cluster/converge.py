"""Bring a managed Redis Cluster to the shape its spec asks for: form, grow, shrink, heal.

:func:`ensure_cluster` is the reconciler's one write path into the cluster.
Each round reads every node, plans with :func:`.layout.plan_layout`, does the
first step the plan has, and reads again; it ends when nothing is left to
do, when it waits for something no command brings (a node that does not
answer, gossip that does not settle within the wait, replicas that have not
finished their sync within :data:`SYNC_SECONDS`), or when its caller says
stop. Nothing is kept between calls: an interrupted call (the operator
killed in the middle of a slot move) is finished by the next one from what
the nodes report.

It never sends CLUSTER RESET to a node that stays unless that node is a
replica (a copy), FLUSHALL, or a command that drops a slot with keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from retention_operator.redis_cluster.connection import Address, Probe, probe_all, resolve, send
from retention_operator.redis_cluster.health import ClusterHealth, Shape, assess
from retention_operator.redis_cluster.layout import Layout, OpenSlot, SlotMove, plan_layout
from retention_operator.redis_cluster.moves import (
    Endpoint,
    MoveError,
    Sessions,
    assign_owner,
    count_keys,
    move_slots,
    set_stable,
)
from retention_operator.redis_cluster.plan import plan_readdress
from retention_operator.redis_cluster.topology import NodeView

logger = logging.getLogger(__name__)

# How often the views are re-read while gossip spreads a change.
_POLL_INTERVAL = 0.1
#: Slots per batch of a move: one round trip of SETSLOTs each way, and MIGRATEs.
SLOTS_PER_BATCH = 128
# A round of moves stops after this long, so views are read (and progress reported) again.
_MOVE_ROUND_SECONDS = 1.0
# Progress is reported at most this often while slots move.
_PROGRESS_SECONDS = 2.0
#: How long a call waits, once nothing else is left, for replicas to finish
#: their sync. A new replica's first sync starts only after the master's
#: ``repl-diskless-sync-delay`` (5 s by default), then the data is sent; Redis
#: itself drops a transfer that has had no I/O for ``repl-timeout`` (60 s).
#: Past this the health says which replica is still syncing, and the next call
#: (the next change of the StatefulSet) looks again.
SYNC_SECONDS = 60.0
# How often the views are re-read while replicas sync.
_SYNC_POLL_INTERVAL = 0.5

#: What :func:`ensure_cluster` reports to its caller while it runs (for Events).
MOVES_STARTED = "MovesStarted"
MOVES_FINISHED = "MovesFinished"
NODE_FORGOTTEN = "NodeForgotten"
NODE_REPLACED = "NodeReplaced"
NODES_REMOVED = "NodesRemoved"
FAILOVER_ASKED = "FailoverAsked"


@dataclass(frozen=True)
class Notice:
    """Something worth an Event: ``kind`` is one of the constants above."""

    kind: str
    message: str


ProgressHook = Callable[[ClusterHealth], Awaitable[bool]]
NoticeHook = Callable[[Notice], Awaitable[None]]


class _Halt(Exception):
    """A step cannot go on; the message says why and ends up in the health."""


async def ensure_cluster(
    *,
    nodes: list[tuple[str, int]],
    shards: int,
    replicas_per_shard: int,
    password: str | None,
    labels: Sequence[str] | None = None,
    on_progress: ProgressHook | None = None,
    on_notice: NoticeHook | None = None,
    # The reconciler's API names it timeout; it bounds each call and wait, not the whole run.
    timeout: float = 5.0,  # noqa: ASYNC109
) -> ClusterHealth:
    """Make ``nodes`` one cluster of ``shards`` masters with ``replicas_per_shard`` each.

    ``nodes`` are in pod ordinal order. The first ``shards * (1 +
    replicas_per_shard)`` stay; any after them are emptied and leave the
    cluster (their pods may then go). A fresh set of nodes is formed with
    shard ``k`` on node ``k``; later the slots are kept balanced within one
    slot per master, moving with their keys.

    Does nothing (no writes) while some node does not answer. A wait for
    gossip that runs out after ``timeout`` seconds is no error: the health
    returned says what is still awaited, and the next call continues.
    Once nothing else is left, it waits up to :data:`SYNC_SECONDS` for
    every replica to be linked and synced (the health is not ok before).
    ``on_progress`` is called with the health when slots start to move,
    then at most every two seconds while they move or replicas sync; when it
    returns False the call stops after the batch in flight (no slot is left
    open). ``on_notice`` hears of moves started
    and finished, nodes forgotten or removed, failovers asked. Never raises
    for network errors; raises ValueError for fewer nodes than the shape needs.
    """
    shape = Shape(shards=shards, replicas=replicas_per_shard)
    if shards < 1 or replicas_per_shard < 0 or len(nodes) < shape.nodes:
        raise ValueError(
            f"{len(nodes)} nodes cannot hold {shards} shards with "
            f"{replicas_per_shard} replicas each"
        )
    run = _Run(
        nodes=list(nodes),
        shape=shape,
        labels=list(labels) if labels is not None else [f"{h}:{p}" for h, p in nodes],
        sessions=Sessions(password=password, seconds=timeout),
        password=password,
        timeout=timeout,
        on_progress=on_progress,
        on_notice=on_notice,
    )
    try:
        return await run.run()
    finally:
        await run.sessions.close()


@dataclass
class _Run:
    nodes: list[Address]
    shape: Shape
    labels: list[str]
    sessions: Sessions
    password: str | None
    timeout: float
    on_progress: ProgressHook | None
    on_notice: NoticeHook | None
    hosts: list[str] = dataclasses.field(default_factory=list)
    moved: int = 0
    moving_since: float | None = None
    reported_at: float = 0.0
    stop: bool = False

    async def run(self) -> ClusterHealth:
        self.hosts = [
            await resolve(address, seconds=self.timeout) or address[0] for address in self.nodes
        ]
        loop = asyncio.get_running_loop()
        idle_until = loop.time() + self.timeout
        sync_until: float | None = None
        while True:
            probes = await self._probe()
            if not all(probe.answering for probe in probes):
                return self._assess(probes)
            views = _views(probes)
            try:
                layout = plan_layout(
                    views,
                    keep=self.shape.nodes,
                    shards=self.shape.shards,
                    replicas=self.shape.replicas,
                )
                acted = await self._step(views, layout)
            except (_Halt, MoveError) as halt:
                return dataclasses.replace(self._assess(await self._probe()), message=str(halt))
            if acted:
                if self.stop:
                    return self._assess(await self._probe())
                idle_until = loop.time() + self.timeout
                continue
            await self._moves_over(layout)
            # Nothing to do: done, blocked, or waiting for gossip to settle or replicas to sync.
            health = self._assess(probes)
            if health.ok or layout.blocked:
                return health
            if _only_syncing(health):
                sync_until = sync_until or loop.time() + SYNC_SECONDS
                await self._report()
                if self.stop or loop.time() >= max(idle_until, sync_until):
                    return health
                await asyncio.sleep(_SYNC_POLL_INTERVAL)
                continue
            if loop.time() >= idle_until:
                return health
            await asyncio.sleep(_POLL_INTERVAL)

    async def _step(self, views: list[NodeView], layout: Layout) -> bool:
        """Do the first step the plan (or readdressing) has; False if there is none."""
        pairs = plan_readdress(views, self.hosts)
        if pairs:
            await self._readdress(views, pairs)
        elif layout.blocked:
            return False
        elif layout.forget:
            await self._forget(views, layout.forget)
        elif layout.meets is not None and layout.meets.newcomers:
            await self._meet(views, layout)
        elif layout.takeovers:
            await self._failover(views, layout.takeovers, force=True)
        elif layout.open_slots:
            await self._close_open(views, layout)
        elif layout.failovers:
            await self._failover(views, layout.failovers)
        elif layout.resets:
            for index in layout.resets:
                await self._send(index, "CLUSTER", "RESET", "SOFT")
        elif layout.assign:
            for index, ranges in layout.assign.items():
                bounds = [bound for rng in ranges for bound in rng]
                await self._send(index, "CLUSTER", "ADDSLOTSRANGE", *bounds)
        elif layout.replicate:
            for index, master_id in layout.replicate.items():
                await self._send(index, "CLUSTER", "REPLICATE", master_id)
            await self._wait(
                lambda views: all(views[i].me.master_id == m for i, m in layout.replicate.items()),
                waiting_for="the replicas to attach",
            )
        elif layout.moves:
            await self._move(views, layout)
        elif layout.leave:
            await self._leave(views, layout.leave)
        else:
            return False
        return True

    # --- Steps --------------------------------------------------------------------------

    async def _readdress(self, views: list[NodeView], pairs: list[tuple[int, int]]) -> None:
        """Tell each node where the members it knows by an old address are now."""
        for i, j in pairs:
            port = self.nodes[j][1]
            bus = views[j].me.bus_port or port + 10000
            await self._send(i, "CLUSTER", "MEET", self.hosts[j], port, bus)
        await self._wait(
            lambda views: not plan_readdress(views, self.hosts),
            waiting_for="the nodes to reach each other at their new addresses",
        )

    async def _forget(self, views: list[NodeView], pairs: Sequence[tuple[int, str]]) -> None:
        # Every node must forget within a minute (the ban CLUSTER FORGET sets),
        # or one that still knows the node gossips it back: all at once.
        by_node: dict[int, list[str]] = {}
        for index, node_id in pairs:
            by_node.setdefault(index, []).append(node_id)
        await asyncio.gather(
            *(
                self._pipeline(index, [("CLUSTER", "FORGET", node_id) for node_id in ids])
                for index, ids in by_node.items()
            )
        )
        for node_id in sorted({node_id for _, node_id in pairs}):
            await self._notice(*self._forgotten(views, node_id))

    def _forgotten(self, views: list[NodeView], node_id: str) -> tuple[str, str]:
        """The notice of a forgotten node: the pod it was, when its hostname or address tells."""
        for view in views:
            for line in view.lines:
                if line.node_id != node_id:
                    continue
                for index, label in enumerate(self.labels):
                    if (line.hostname and line.hostname.split(".")[0] == label) or (
                        line.host == self.hosts[index]
                        and line.address.split("@")[0].endswith(f":{self.nodes[index][1]}")
                    ):
                        return (
                            NODE_REPLACED,
                            f"{label} came back without its data (a new node id); "
                            f"its old node {node_id[:8]} is forgotten and it rejoins",
                        )
        return NODE_FORGOTTEN, f"node {node_id[:8]} belongs to no pod any more and is forgotten"

    async def _meet(self, views: list[NodeView], layout: Layout) -> None:
        plan = layout.meets
        assert plan is not None
        # Distinct epochs up front spare the fresh masters the epoch collision
        # round that would otherwise follow slot assignment. Only a shortcut:
        # Redis refuses it once a node has met another.
        for index in plan.fresh:
            await self._send(index, "CLUSTER", "SET-CONFIG-EPOCH", index + 1, required=False)
        anchor = self.nodes[plan.anchor]
        bus = views[plan.anchor].me.bus_port or anchor[1] + 10000
        for index in plan.newcomers:
            await self._send(index, "CLUSTER", "MEET", self.hosts[plan.anchor], anchor[1], bus)
        keep = self.shape.nodes

        def joined(views: list[NodeView]) -> bool:
            ids = {view.me.node_id for view in views[:keep]}
            return all(ids <= view.known_ids for view in views[:keep])

        await self._wait(joined, waiting_for="all nodes to know each other")

    async def _failover(
        self, views: list[NodeView], heirs: Sequence[int], *, force: bool = False
    ) -> None:
        """Replicas take over from their masters: a leaving one, or (``force``) one gone.

        A master that no pod runs cannot agree to a manual failover, so the
        replica is told FORCE: it starts Redis' election without it.
        """
        for index in heirs:
            master = views[index].me.master_id or ""
            why = "which no pod runs any more" if force else "which leaves"
            await self._notice(
                FAILOVER_ASKED,
                f"{self.labels[index]} takes over from {self._label_of(views, master)}, {why}",
            )
            await self._send(index, "CLUSTER", "FAILOVER", *(["FORCE"] if force else []))
        await self._wait(
            lambda views: all(views[i].me.is_master for i in heirs),
            waiting_for="the replicas to take over",
            seconds=self.timeout * 3,
        )

    async def _close_open(self, views: list[NodeView], layout: Layout) -> None:
        """Finish or roll back every move an interrupted run left open."""
        staying = {share.index for share in layout.masters}
        complete: dict[tuple[int, int], list[int]] = {}
        for open_slot in layout.open_slots:
            source, target = open_slot.source, open_slot.target
            if source is None or target is None:
                await self._abandon(views, open_slot)
            elif source == target:
                # The move had finished on the target; the others are told.
                await assign_owner(
                    self.sessions,
                    owner=self._endpoint(views, target),
                    slots=[open_slot.slot],
                    source=None,
                    others=[self.nodes[i] for i in open_slot.markers],
                )
            else:
                (keys,) = await count_keys(self.sessions, self.nodes[target], [open_slot.slot])
                if keys or target in staying:
                    complete.setdefault((source, target), []).append(open_slot.slot)
                else:
                    for index in open_slot.markers:
                        await set_stable(self.sessions, self.nodes[index], [open_slot.slot])
        for (source, target), slots in complete.items():
            await self._move_batch(
                views, SlotMove(source=source, target=target, slots=tuple(slots))
            )

    async def _abandon(self, views: list[NodeView], open_slot: OpenSlot) -> None:
        """A slot open towards or from a node no pod has: keep it where its keys are."""
        holders = [
            index
            for index in open_slot.markers
            if (await count_keys(self.sessions, self.nodes[index], [open_slot.slot]))[0]
        ]
        if open_slot.source is None and holders:
            raise _Halt(
                f"slot {open_slot.slot} has keys on {self.labels[holders[0]]} but no owner; "
                "it needs `redis-cli --cluster fix`"
            )
        for index in open_slot.markers:
            await set_stable(self.sessions, self.nodes[index], [open_slot.slot])

    async def _move(self, views: list[NodeView], layout: Layout) -> None:
        """Move slots for about a second, then let the caller read the views again."""
        loop = asyncio.get_running_loop()
        if self.moving_since is None:
            self.moving_since = time.monotonic()
            await self._notice(MOVES_STARTED, self._moves_text(layout))
            # Reported before the first batch, so that the status tells of every
            # move, even one done within a round.
            await self._report(now=True)
            if self.stop:
                return
        until = loop.time() + _MOVE_ROUND_SECONDS
        for move in layout.moves:
            for first in range(0, len(move.slots), SLOTS_PER_BATCH):
                batch = move.slots[first : first + SLOTS_PER_BATCH]
                await self._move_batch(
                    views, SlotMove(source=move.source, target=move.target, slots=batch)
                )
                if loop.time() >= until:
                    await self._report()
                    return
        await self._report()

    async def _move_batch(self, views: list[NodeView], move: SlotMove) -> None:
        if views[move.target].state != "ok":
            await self._target_ready(move.target)
        masters = [self.nodes[i] for i, view in enumerate(views) if view.me.is_master]
        await move_slots(
            self.sessions,
            source=self._endpoint(views, move.source),
            target=self._endpoint(views, move.target),
            slots=move.slots,
            others=masters,
        )
        self.moved += len(move.slots)

    async def _target_ready(self, target: int) -> None:
        """Wait for a target to report ``cluster_state:ok``, or halt saying it has not yet.

        A node that has just met the cluster reports ``fail`` until gossip
        has told it who serves every slot, and refuses MIGRATE's keys until
        then (CLUSTERDOWN); moving to it before would leave slots open.
        """
        waiting_for = f"{self.labels[target]} to see every slot served"
        await self._wait(lambda views: views[target].state == "ok", waiting_for=waiting_for)
        probes = await self._probe()
        if not all(probe.answering for probe in probes) or _views(probes)[target].state != "ok":
            raise _Halt(f"Waiting for {waiting_for} before slots move to it.")

    async def _report(self, *, now: bool = False) -> None:
        """Tell the caller how far the move (or the sync) is, at most every two seconds.

        ``now``: whatever the time since the last report. The caller may say stop.
        """
        if self.on_progress is None:
            return
        if not now and time.monotonic() - self.reported_at < _PROGRESS_SECONDS:
            return
        self.reported_at = time.monotonic()
        if not await self.on_progress(self._assess(await self._probe())):
            self.stop = True

    async def _moves_over(self, layout: Layout) -> None:
        if self.moving_since is not None and not layout.resharding:
            seconds = time.monotonic() - self.moving_since
            self.moving_since = None
            shares = ", ".join(f"{self.labels[s.index]} {s.target}" for s in layout.masters)
            await self._notice(
                MOVES_FINISHED, f"moved {self.moved} slots in {seconds:.0f} s; slots now: {shares}"
            )

    def _moves_text(self, layout: Layout) -> str:
        parts = [
            f"{len(move.slots)} from {self.labels[move.source]} to {self.labels[move.target]}"
            for move in layout.moves
        ]
        return f"moving {layout.slots_to_move} slots: " + ", ".join(parts)

    async def _leave(self, views: list[NodeView], leaving: Sequence[int]) -> None:
        """Every other node forgets the leaving ones, which are then reset (emptied)."""
        gone = {views[index].me.node_id for index in leaving}
        await asyncio.gather(
            *(
                self._pipeline(index, [("CLUSTER", "FORGET", node_id) for node_id in sorted(gone)])
                for index, view in enumerate(views)
                if index not in leaving and gone & view.known_ids
            )
        )
        for index in leaving:
            await self._send(index, "CLUSTER", "RESET", "SOFT")
        names = ", ".join(self.labels[index] for index in leaving)
        await self._notice(NODES_REMOVED, f"{names} left the cluster")

    # --- Plumbing -----------------------------------------------------------------------

    def _endpoint(self, views: list[NodeView], index: int) -> Endpoint:
        return Endpoint(
            address=self.nodes[index], node_id=views[index].me.node_id, ip=self.hosts[index]
        )

    def _label_of(self, views: list[NodeView], node_id: str) -> str:
        for index, view in enumerate(views):
            if view.me.node_id == node_id:
                return self.labels[index]
        return f"node {node_id[:8]}"

    async def _wait(
        self,
        done: Callable[[list[NodeView]], bool],
        *,
        waiting_for: str,
        seconds: float | None = None,
    ) -> None:
        """Re-read the views until ``done`` holds or the wait runs out (which is no failure)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (seconds if seconds is not None else self.timeout)
        while True:
            probes = await self._probe()
            if not all(probe.answering for probe in probes):
                raise _Halt(f"A node stopped answering while waiting for {waiting_for}.")
            if done(_views(probes)) or loop.time() >= deadline:
                return
            await asyncio.sleep(_POLL_INTERVAL)

    async def _send(self, index: int, *args: str | int, required: bool = True) -> None:
        """Send one command to node ``index``; a failure halts the run if ``required``."""
        address = self.nodes[index]
        logger.info("Redis cluster: %s on %s", " ".join(map(str, args)), self.labels[index])
        error = await send(address, *args, password=self.password, seconds=self.timeout)
        if error is None:
            return
        where = f"{args[0]} {args[1]} on {self.labels[index]}"
        if required:
            raise _Halt(f"{where} failed: {error.rstrip('.')}.")
        logger.info("Redis cluster: %s skipped: %s", where, error)

    async def _pipeline(self, index: int, commands: Sequence[Sequence[object]]) -> None:
        """Several commands to one node; a node that forgets an unknown id is fine."""
        logger.info(
            "Redis cluster: %s on %s",
            "; ".join(" ".join(map(str, command)) for command in commands),
            self.labels[index],
        )
        for reply in await self.sessions.pipeline(self.nodes[index], commands):
            if isinstance(reply, Exception) and "Unknown node" not in str(reply):
                raise _Halt(f"{self.labels[index]} refused: {reply}")

    async def _notice(self, kind: str, message: str) -> None:
        logger.info("Redis cluster: %s", message)
        if self.on_notice is not None:
            await self.on_notice(Notice(kind=kind, message=message))

    async def _probe(self) -> list[Probe]:
        return await probe_all(self.nodes, password=self.password, seconds=self.timeout)

    def _assess(self, probes: Sequence[Probe]) -> ClusterHealth:
        return assess(probes, shape=self.shape, labels=self.labels)


def _only_syncing(health: ClusterHealth) -> bool:
    """True when the one thing the cluster lacks is replicas that finish their sync."""
    return bool(health.syncing) and health.formed and health.state_ok and health.settled


def _views(probes: Sequence[Probe]) -> list[NodeView]:
    """The views of probes known to be answering (the caller has checked)."""
    return [probe.view for probe in probes if probe.view is not None]
