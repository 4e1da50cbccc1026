"""A master killed: its replica takes over (Redis' own failover), the status says so once.

Real redis-server nodes, three shards with a replica each and keys in every
shard. One master is killed (SIGKILL, a crash). Nothing but status reads
run while Redis fails over: the status block (:func:`redis_status`, fed by
the read-only :func:`cluster_health` as the reconciler feeds it) first shows
the master failing, then its replica serving the same slots, which is
recorded as the last failover, once. The killed node starts again with its
data and is a replica of the new master; every key is still there.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory
from retention_operator.reconcile.redis_status import redis_status
from retention_operator.redis_cluster import ClusterHealth, Shape, cluster_health, ensure_cluster

from .conftest import Addresses, replicated

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

LABELS = [f"demo-redis-{index}" for index in range(6)]
SHAPE = Shape(shards=3, replicas=1)
KEYS = 2000


async def test_a_killed_master_fails_over_is_recorded_once_and_rejoins_as_a_replica(
    redis_cluster_nodes_factory: ClusterNodesFactory, addresses: Addresses
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    await _converge(addresses(nodes))
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes], decode_responses=True
    )
    try:
        await client.mset_nonatomic({f"key:{n}": f"value {n}" for n in range(KEYS)})
        stored, _ = redis_status(None, await _read(addresses(nodes)), shards=3, now="t0")
        first = stored["slotsPerMaster"][0]
        victim, heir = LABELS.index(first["master"]), LABELS.index(first["replicas"][0])
        replicated(nodes[victim])

        nodes[victim].kill()
        began = time.monotonic()
        saw_failing, failovers, tick = False, [], 0
        while time.monotonic() - began < 60:
            tick += 1
            health = await _read(addresses(nodes))
            stored, failover = redis_status(stored, health, shards=3, now=f"t{tick}")
            saw_failing |= any(m.get("failing") for m in stored["slotsPerMaster"])
            if failover is not None:
                failovers.append(failover)
            served = {m["ranges"]: m["master"] for m in stored["slotsPerMaster"]}
            if served.get(first["ranges"]) == LABELS[heir] and failovers:
                break
            await asyncio.sleep(0.3)
        print(f"failover seen {time.monotonic() - began:.1f} s after the kill")

        assert saw_failing, "the killed master was never reported failing"
        assert [(f.master, f.previous_master) for f in failovers] == [
            (LABELS[heir], LABELS[victim])
        ]
        assert stored["lastFailover"]["master"] == LABELS[heir]
        assert stored["lastFailover"]["slots"] == first["slots"]
        # Later reads of the same cluster record nothing new.
        again, none = redis_status(stored, await _read(addresses(nodes)), shards=3, now="later")
        assert none is None and again["lastFailover"] == stored["lastFailover"]

        nodes[victim].start()
        health = await _converge(addresses(nodes))
        shard = next(s for s in health.shards if s.master == LABELS[heir])
        assert shard.replicas == (LABELS[victim],), health.shards
        values = await client.mget_nonatomic([f"key:{n}" for n in range(KEYS)])
        assert values == [f"value {n}" for n in range(KEYS)]
    finally:
        await client.aclose()


async def _read(nodes: list[tuple[str, int]]) -> ClusterHealth:
    return await cluster_health(nodes=nodes, password=None, shape=SHAPE, labels=LABELS)


async def _converge(nodes: list[tuple[str, int]]) -> ClusterHealth:
    deadline = time.monotonic() + 60
    while True:
        health = await ensure_cluster(
            nodes=nodes, shards=3, replicas_per_shard=1, password=None, labels=LABELS
        )
        if health.ok or time.monotonic() > deadline:
            assert health.ok, health.message
            return health
        await asyncio.sleep(0.3)
