"""An interrupted bootstrap (nodes met, some slots owned, no replicas) is finished."""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory
from retention_operator.redis_cluster import cluster_health, ensure_cluster

from .conftest import Addresses, WaitHealthy

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


async def test_met_nodes_without_slots_get_slots_and_replicas(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    anchor = nodes[0]
    with anchor.client() as conn:
        for node in nodes[1:]:
            conn.execute_command("CLUSTER", "MEET", node.host, node.port, node.cluster_bus_port)
        # A slot owned before the bootstrap must stay where it is: node 0
        # owns a piece of shard 1's range, and a key in it survives.
        conn.execute_command("CLUSTER", "ADDSLOTSRANGE", 6000, 6100)
    partial = await cluster_health(nodes=addresses(nodes), password=None)
    assert not partial.formed

    step = await ensure_cluster(
        nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None
    )
    assert step.formed, step.message

    health = await wait_healthy(nodes)
    assert (health.masters, health.replicas) == (3, 3)
    with nodes[0].client() as conn:
        slots = conn.execute_command("CLUSTER", "SLOTS")
    owners = {(int(first), int(last)): int(master[1]) for first, last, master, *_ in slots}
    assert owners[(6000, 6100)] == nodes[0].port
