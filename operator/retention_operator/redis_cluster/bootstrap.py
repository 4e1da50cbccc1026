"""Idempotent bootstrap of a managed Redis Cluster: meet, assign slots, attach replicas.

:func:`ensure_cluster` is called by the reconciler on every visit of a stack
with a managed Redis. Each call reads all nodes, does only the steps that are
still missing (as planned by :mod:`.plan`) and returns the health after them,
so an interrupted bootstrap is finished by a later call and a formed cluster
receives no writes at all. It never sends CLUSTER RESET, FLUSHALL or a command
that moves an assigned slot. Nodes that came back with new addresses (pods
restarted all at once) are told where their members are now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence

from retention_operator.redis_cluster.connection import Address, Probe, probe_all, resolve, send
from retention_operator.redis_cluster.health import ClusterHealth, assess, is_one_cluster
from retention_operator.redis_cluster.plan import (
    plan_meets,
    plan_readdress,
    plan_replicas,
    plan_slots,
)
from retention_operator.redis_cluster.topology import NodeView

logger = logging.getLogger(__name__)

# How often the views are re-read while gossip spreads a change.
_POLL_INTERVAL = 0.1


class _Halt(Exception):
    """A step cannot go on; the message says why and ends up in the health."""


async def ensure_cluster(
    *,
    nodes: list[tuple[str, int]],
    shards: int,
    replicas_per_shard: int,
    password: str | None,
    # The reconciler's API names it timeout; it bounds each call and wait, not the whole run.
    timeout: float = 5.0,  # noqa: ASYNC109
) -> ClusterHealth:
    """Form ``nodes`` into one cluster of ``shards`` masters with ``replicas_per_shard`` each.

    ``nodes`` are in pod ordinal order; the first ``shards`` become masters
    (shard ``k`` gets the ``k``-th even slot range, see :func:`.slot_ranges`)
    and the others replicate the master with the fewest replicas.

    Does nothing (no writes) if some node does not answer, or if the cluster is
    already complete: one cluster of all nodes, every slot owned and no empty
    master. A partial state (nodes met, slots partly assigned, replicas
    missing) is completed. A node in another group that owns slots is never
    merged; the message says so.

    ``timeout`` bounds each network call and each wait for gossip to spread a
    step. A wait that runs out is not an error: the health returned says what
    is still awaited and the next call continues from there. Never raises for
    network errors; raises ValueError if ``len(nodes)`` is not
    ``shards * (1 + replicas_per_shard)``.
    """
    if shards < 1 or replicas_per_shard < 0 or len(nodes) != shards * (1 + replicas_per_shard):
        raise ValueError(
            f"{len(nodes)} nodes cannot hold {shards} shards with "
            f"{replicas_per_shard} replicas each"
        )
    step = _Bootstrap(
        nodes=list(nodes),
        shards=shards,
        replicas=shards * replicas_per_shard,
        password=password,
        timeout=timeout,
    )
    return await step.run()


@dataclasses.dataclass
class _Bootstrap:
    nodes: list[Address]
    shards: int
    replicas: int
    password: str | None
    timeout: float

    async def run(self) -> ClusterHealth:
        probes = await self._probe()
        try:
            if all(probe.answering for probe in probes):
                probes = await self._readdress(probes)
                probes = await self._meet(probes)
                # Slots are assigned only within one cluster: a node left out
                # would otherwise form a second claim on the same slots.
                if is_one_cluster(_views(probes), total=len(probes)):
                    probes = await self._assign_slots(probes)
                    probes = await self._attach_replicas(probes)
        except _Halt as halt:
            return dataclasses.replace(self._assess(await self._probe()), message=str(halt))
        return self._assess(probes)

    async def _meet(self, probes: list[Probe]) -> list[Probe]:
        views = _views(probes)
        if is_one_cluster(views, total=len(views)):
            return probes
        plan = plan_meets(views)
        if plan.blocked:
            labels = ", ".join(probes[index].label for index in plan.blocked)
            raise _Halt(f"Not merging {labels}: they belong to another cluster that owns slots.")
        if plan.newcomers:
            # Distinct epochs up front spare the fresh masters the epoch
            # collision round that would otherwise follow slot assignment. It
            # is only a shortcut: Redis refuses it once a node has met another
            # (a MEET may be under way), and the collision round then does it.
            for index in plan.fresh:
                await self._send(index, "CLUSTER", "SET-CONFIG-EPOCH", index + 1, required=False)
            await self._meet_anchor(plan.anchor, plan.newcomers, views[plan.anchor])
        return await self._wait(
            lambda views: is_one_cluster(views, total=len(views)),
            waiting_for="all nodes to know each other",
        )

    async def _readdress(self, probes: list[Probe]) -> list[Probe]:
        """Tell each node where the members it knows by an old address are now."""
        hosts = [
            await resolve(address, seconds=self.timeout) or address[0] for address in self.nodes
        ]
        pairs = plan_readdress(_views(probes), hosts)
        if not pairs:
            return probes
        for i, j in pairs:
            peer = _views(probes)[j].me
            port = self.nodes[j][1]
            await self._send(i, "CLUSTER", "MEET", hosts[j], port, peer.bus_port or port + 10000)
        return await self._wait(
            lambda views: not plan_readdress(views, hosts),
            waiting_for="the nodes to reach each other at their new addresses",
        )

    async def _meet_anchor(
        self, anchor: int, newcomers: Sequence[int], anchor_view: NodeView
    ) -> None:
        host, port = self.nodes[anchor]
        # CLUSTER MEET needs an IP, and the bus port, which need not be port + 10000.
        ip = await resolve(self.nodes[anchor], seconds=self.timeout)
        if ip is None:
            raise _Halt(f"Cannot resolve {host} to meet it.")
        bus_port = anchor_view.me.bus_port or port + 10000
        for index in newcomers:
            await self._send(index, "CLUSTER", "MEET", ip, port, bus_port)

    async def _assign_slots(self, probes: list[Probe]) -> list[Probe]:
        plan = plan_slots(_views(probes), shards=self.shards)
        if plan.stuck:
            labels = ", ".join(probes[index].label for index in plan.stuck)
            raise _Halt(f"Unowned slots are left for {labels}, which are replicas now.")
        if not plan.assign:
            return probes
        for index, ranges in plan.assign.items():
            bounds = [bound for rng in ranges for bound in rng]
            await self._send(index, "CLUSTER", "ADDSLOTSRANGE", *bounds)
        return await self._probe()

    async def _attach_replicas(self, probes: list[Probe]) -> list[Probe]:
        plan = plan_replicas(_views(probes))
        if not plan:
            return probes
        for index, master_id in plan.items():
            await self._send(index, "CLUSTER", "REPLICATE", master_id)
        return await self._wait(
            lambda views: self._assess_views(views).ok, waiting_for="the replicas to attach"
        )

    async def _wait(
        self, done: Callable[[list[NodeView]], bool], *, waiting_for: str
    ) -> list[Probe]:
        """Re-read the views until ``done`` holds or ``timeout`` runs out.

        Running out is no failure: the last probes are returned and the
        health built from them says what is missing. A node that stops
        answering ends the step.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            probes = await self._probe()
            if not all(probe.answering for probe in probes):
                raise _Halt(f"A node stopped answering while waiting for {waiting_for}.")
            if done(_views(probes)) or loop.time() >= deadline:
                return probes
            await asyncio.sleep(_POLL_INTERVAL)

    async def _send(self, index: int, *args: str | int, required: bool = True) -> None:
        """Send one command to node ``index``; a failure halts the run if ``required``."""
        address = self.nodes[index]
        logger.info("Redis cluster bootstrap: %s on %s:%s", " ".join(map(str, args)), *address)
        error = await send(address, *args, password=self.password, seconds=self.timeout)
        if error is None:
            return
        where = f"{args[0]} {args[1]} on {address[0]}:{address[1]}"
        if required:
            raise _Halt(f"{where} failed: {error.rstrip('.')}.")
        logger.info("Redis cluster bootstrap: %s skipped: %s", where, error)

    async def _probe(self) -> list[Probe]:
        return await probe_all(self.nodes, password=self.password, seconds=self.timeout)

    def _assess(self, probes: Sequence[Probe]) -> ClusterHealth:
        return assess(probes, expected_masters=self.shards, expected_replicas=self.replicas)

    def _assess_views(self, views: Sequence[NodeView]) -> ClusterHealth:
        probes = [
            Probe(address=address, view=view)
            for address, view in zip(self.nodes, views, strict=True)
        ]
        return self._assess(probes)


def _views(probes: Sequence[Probe]) -> list[NodeView]:
    """The views of probes known to be answering (the caller has checked)."""
    return [probe.view for probe in probes if probe.view is not None]
