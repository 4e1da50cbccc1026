"""replicasPerShard 1 -> 2 -> 0 on real nodes: replicas attach, then leave; no key moves or goes.

Six redis-server nodes formed as 3 shards with a replica each, with keys
and a job stream with pending entries. Three more nodes (pods 6-8 of the
grown StatefulSet) become second replicas, one per master. Then, with no
replica asked for, the first three pods stay masters and the six others
leave the cluster (the StatefulSet may shrink to 3): no slot moves, since
the masters stay, and every key, entry and pending id is there.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory
from retention_operator.redis_cluster import ClusterHealth, ensure_cluster

from .conftest import Addresses, assert_all_there, fill, pending_ids

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

KEYS = 3000


async def test_second_replicas_attach_then_all_replicas_leave(
    redis_cluster_nodes_factory: ClusterNodesFactory, addresses: Addresses
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    health = await _until_ok(addresses(nodes), replicas=1)
    masters = sorted(shard.master for shard in health.shards)
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes], decode_responses=True
    )
    try:
        await fill(client, KEYS)
        pending = await pending_ids(client)

        grown = nodes + redis_cluster_nodes_factory(3)
        health = await _until_ok(addresses(grown), replicas=2)
        assert sorted(shard.master for shard in health.shards) == masters
        assert all(len(shard.replicas) == 2 for shard in health.shards), health.shards
        await assert_all_there(client, KEYS, pending)

        health = await _until_ok(addresses(grown), replicas=0)
        assert sorted(shard.master for shard in health.shards) == masters
        assert (health.masters, health.replicas) == (3, 0), health.shards
        assert health.released, health.message
        for node in grown[3:]:
            assert node.cluster_info()["cluster_known_nodes"] == "1", node.name
        await assert_all_there(client, KEYS, pending)
    finally:
        await client.aclose()


async def _until_ok(nodes: list[tuple[str, int]], *, replicas: int) -> ClusterHealth:
    deadline = time.monotonic() + 90
    while True:
        health = await ensure_cluster(
            nodes=nodes, shards=3, replicas_per_shard=replicas, password=None
        )
        if health.ok or time.monotonic() > deadline:
            assert health.ok, health.message
            return health
        await asyncio.sleep(0.3)
