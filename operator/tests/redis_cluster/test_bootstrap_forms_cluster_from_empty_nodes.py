"""Six unformed nodes become 3 masters and 3 replicas that serve every slot and key."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory
from retention_operator.redis_cluster import ensure_cluster

from .conftest import Addresses, WaitHealthy

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


async def test_bootstrap_forms_a_healthy_cluster_from_empty_nodes(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
) -> None:
    nodes = redis_cluster_nodes_factory(6)

    await ensure_cluster(nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None)

    health = await wait_healthy(nodes)
    assert (health.answering, health.total) == (6, 6)
    assert (health.masters, health.replicas) == (3, 3)
    assert health.message == "cluster ok: 3 shards, 3 replicas, 16384 slots"
    for node in nodes:
        assert node.cluster_state() == "ok"
        assert node.cluster_info()["cluster_slots_assigned"] == "16384"
    # The first three (pod ordinals 0-2) are the masters; each has one replica.
    for index, node in enumerate(nodes):
        with node.client() as conn:
            role = conn.execute_command("ROLE")[0]
        assert role == ("master" if index < 3 else "slave")

    # The queue's hash-tagged stream key and keys in every shard round-trip.
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes],
        decode_responses=True,
    )
    try:
        for key in ("{demo}:jobs", "a", "b", "c"):
            await client.set(key, f"value of {key}")
            assert await client.get(key) == f"value of {key}"
    finally:
        await client.aclose()
