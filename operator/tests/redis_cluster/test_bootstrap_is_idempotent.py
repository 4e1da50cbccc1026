"""A second ensure_cluster on a formed cluster sends no writes and changes nothing."""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory, RedisServer
from retention_operator.redis_cluster import ensure_cluster

from .conftest import Addresses, CommandCalls, WaitHealthy

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

WRITES = ("cluster|meet", "cluster|addslotsrange", "cluster|replicate", "cluster|set-config-epoch")


async def test_rerun_on_a_formed_cluster_sends_no_writes(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
    command_calls: CommandCalls,
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    await ensure_cluster(nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None)
    await wait_healthy(nodes)
    before = {(node.port, cmd): command_calls(node, cmd) for node in nodes for cmd in WRITES}
    topology = _topology(nodes)

    health = await ensure_cluster(
        nodes=addresses(nodes), shards=3, replicas_per_shard=1, password=None
    )

    assert health.ok, health.message
    after = {(node.port, cmd): command_calls(node, cmd) for node in nodes for cmd in WRITES}
    assert after == before
    assert sum(before.values()) > 0  # The counters do see the bootstrap's writes.
    assert _topology(nodes) == topology


def _topology(nodes: list[RedisServer]) -> list[tuple[str, ...]]:
    """Id, role, master, config epoch and slots of every member, as node 0 sees them."""
    with nodes[0].client() as conn:
        text = conn.execute_command("CLUSTER", "NODES")
    rows = []
    for line in text.splitlines():
        fields = line.split()
        rows.append(
            (fields[0], fields[2].replace("myself,", ""), fields[3], fields[6], *fields[8:])
        )
    return sorted(rows)
