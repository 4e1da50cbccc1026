"""A pod back with an empty volume (a new node id, the same address) takes its place again.

Real redis-server nodes, three shards with a replica each. A master's
process is killed and its data dir wiped, then it starts again: a new,
empty node where the old one was. :func:`ensure_cluster`, called as the
reconciler calls it, asks the replica to take over (the old id sits
``noaddr``, since a node at its address answered with another id, and Redis
never fails such a node over by itself), forgets the stale id on every
node, meets the new node and makes it the replica of the master that lacks
one. No hand, no key lost. Before the fix of the plan that came with this
test, the new empty node took the old master's replica (CLUSTER REPLICATE),
which dropped the only copy of a third of the keys.
"""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory
from retention_operator.redis_cluster import ClusterHealth, Notice, ensure_cluster

from .conftest import Addresses, replicated

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

LABELS = [f"demo-redis-{index}" for index in range(6)]
KEYS = 2000


async def test_a_wiped_master_comes_back_as_the_replica_of_its_heir(
    redis_cluster_nodes_factory: ClusterNodesFactory, addresses: Addresses
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    health = await _converge(addresses(nodes), [])
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes], decode_responses=True
    )
    try:
        await client.mset_nonatomic({f"key:{n}": f"value {n}" for n in range(KEYS)})
        shard = health.shards[0]
        victim, heir = LABELS.index(shard.master), LABELS.index(shard.replicas[0])
        old_id = nodes[victim].client().execute_command("CLUSTER MYID")
        replicated(nodes[victim])

        nodes[victim].kill()
        shutil.rmtree(nodes[victim].dir)
        nodes[victim].start()
        began = time.monotonic()
        notices: list[Notice] = []
        health = await _converge(addresses(nodes), notices)
        print(f"wiped master back in the cluster after {time.monotonic() - began:.1f} s")

        assert nodes[victim].client().execute_command("CLUSTER MYID") != old_id
        back = next(s for s in health.shards if s.master == LABELS[heir])
        assert back.replicas == (LABELS[victim],), health.shards
        assert (health.masters, health.replicas) == (3, 3)
        for node in nodes:
            known = node.client().execute_command("CLUSTER NODES")
            assert old_id not in known, f"{node.name} still knows the old node"
        # Only a hostname (pods announce theirs) tells which pod the old id was;
        # these nodes announce none, and Redis cleared the old id's address.
        kinds = [n.kind for n in notices if old_id[:8] in n.message]
        assert kinds == ["FailoverAsked", "NodeForgotten"], notices
        values = await client.mget_nonatomic([f"key:{n}" for n in range(KEYS)])
        assert values == [f"value {n}" for n in range(KEYS)]
    finally:
        await client.aclose()


async def _converge(nodes: list[tuple[str, int]], notices: list[Notice]) -> ClusterHealth:
    """ensure_cluster once per visit, as the reconciler calls it, until the cluster is ok."""

    async def notice(note: Notice) -> None:
        notices.append(note)

    deadline = time.monotonic() + 90
    while True:
        health = await ensure_cluster(
            nodes=nodes,
            shards=3,
            replicas_per_shard=1,
            password=None,
            labels=LABELS,
            on_notice=notice,
        )
        if health.ok or time.monotonic() > deadline:
            assert health.ok, health.message
            return health
        await asyncio.sleep(0.5)
