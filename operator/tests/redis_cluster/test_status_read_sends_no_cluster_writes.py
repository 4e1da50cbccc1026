"""The status read of a managed cluster only reads: unformed nodes stay unformed under it.

The reconciler's status path (``_observe`` -> :func:`managed_redis.health`)
ends in :func:`managed_redis.read_cluster`; here it runs against real,
unformed redis-server nodes as often as child events would call it. Every
node's command counters show no cluster write, and each node still knows
only itself; the reconcile step (:func:`ensure_cluster`) is what forms it.
"""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory
from retention_operator.reconcile.managed_redis import (
    Nodes,
    cluster_component_health,
    read_cluster,
)
from retention_operator.reconcile.status import ComponentHealth
from retention_operator.redis_cluster import Shape, ensure_cluster

from .conftest import Addresses, CommandCalls

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

# Every CLUSTER subcommand that changes a node's view, and the other writes a step may send.
WRITES = (
    "cluster|meet",
    "cluster|addslots",
    "cluster|addslotsrange",
    "cluster|replicate",
    "cluster|set-config-epoch",
    "cluster|setslot",
    "cluster|forget",
    "cluster|reset",
    "cluster|failover",
    "migrate",
)


async def test_status_reads_of_unformed_nodes_send_no_cluster_write(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    command_calls: CommandCalls,
) -> None:
    servers = redis_cluster_nodes_factory(6)
    nodes = Nodes(
        addresses=addresses(servers),
        labels=[f"demo-redis-{index}" for index in range(6)],
        password=None,
        shape=Shape(shards=3, replicas=1),
    )
    ready = ComponentHealth(6, 6)

    for _ in range(5):
        component = cluster_component_health(ready, await read_cluster(nodes))
        assert component.message is not None
        assert component.message.startswith("waiting for the Redis cluster to form: "), component

    assert {cmd: sum(command_calls(s, cmd) for s in servers) for cmd in WRITES} == dict.fromkeys(
        WRITES, 0
    )
    for server in servers:
        info = server.cluster_info()
        assert (info["cluster_known_nodes"], info["cluster_slots_assigned"]) == ("1", "0")

    # The reconcile step forms it; the same read then reports the component ready.
    await ensure_cluster(nodes=nodes.addresses, shards=3, replicas_per_shard=1, password=None)
    assert sum(command_calls(s, "cluster|meet") for s in servers) > 0
    health = await read_cluster(nodes)
    assert health.formed, health.message
