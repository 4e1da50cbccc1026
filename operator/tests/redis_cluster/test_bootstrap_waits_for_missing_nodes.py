"""A node that does not answer stops the bootstrap; once back, the cluster heals alone."""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory
from retention_operator.redis_cluster import cluster_health, ensure_cluster

from .conftest import Addresses, CommandCalls, WaitHealthy

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


async def test_bootstrap_does_nothing_while_a_fresh_node_is_missing(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    command_calls: CommandCalls,
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    nodes[4].stop()

    health = await ensure_cluster(
        nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None, timeout=1.0
    )

    assert (health.answering, health.total, health.formed) == (5, 6, False)
    assert health.message.startswith("5/6 Redis nodes answering")
    assert f"{nodes[4].host}:{nodes[4].port}" in health.message
    for node in nodes[:4] + nodes[5:]:
        assert command_calls(node, "cluster|meet") == 0
        assert node.cluster_info()["cluster_known_nodes"] == "1"


async def test_stopped_node_is_reported_and_its_restart_heals_without_rebootstrap(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
    command_calls: CommandCalls,
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    await ensure_cluster(nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None)
    await wait_healthy(nodes)
    with nodes[1].client() as conn:
        node_id = conn.execute_command("CLUSTER", "MYID")

    nodes[1].stop()
    health = await cluster_health(nodes=addresses(nodes), password=None, timeout=1.0)
    assert (health.answering, health.total) == (5, 6)
    assert not health.state_ok
    assert health.message.startswith("5/6 Redis nodes answering")
    rerun = await ensure_cluster(
        nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None, timeout=1.0
    )
    assert rerun.answering == 5
    assert rerun.message == health.message

    nodes[1].start()
    # The restarted node reloads nodes.conf: it is recognised as formed at
    # once, and the only call ensure_cluster needs to make is none.
    health = await cluster_health(nodes=addresses(nodes), password=None)
    assert health.formed, health.message
    await ensure_cluster(nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None)
    health = await wait_healthy(nodes)
    assert (health.masters, health.replicas) == (3, 3)
    with nodes[1].client() as conn:
        assert conn.execute_command("CLUSTER", "MYID") == node_id
    # Since its restart the node has seen no configuration command at all.
    for cmd in ("cluster|meet", "cluster|addslotsrange", "cluster|replicate"):
        assert command_calls(nodes[1], cmd) == 0
