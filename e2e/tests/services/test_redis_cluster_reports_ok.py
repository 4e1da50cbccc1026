"""A formed 6-node Redis Cluster is healthy and serves keys through a cluster client."""

from __future__ import annotations

import pytest

from harness.services import RedisClusterServers

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def test_every_node_reports_cluster_state_ok(redis_cluster: RedisClusterServers) -> None:
    assert len(redis_cluster.nodes) == 6
    for node in redis_cluster.nodes:
        info = node.cluster_info()
        assert info["cluster_state"] == "ok", node.name
        assert info["cluster_slots_assigned"] == "16384", node.name
        assert info["cluster_known_nodes"] == "6", node.name


def test_cluster_has_three_masters_and_three_replicas(redis_cluster: RedisClusterServers) -> None:
    roles = []
    for node in redis_cluster.nodes:
        with node.client() as conn:
            roles.append(conn.execute_command("ROLE")[0])
    assert sorted(roles) == ["master"] * 3 + ["slave"] * 3


def test_keys_round_trip_through_a_cluster_client(redis_cluster: RedisClusterServers) -> None:
    # Enough keys to land in every master's slot range.
    keys = {f"roundtrip:{index}": f"value-{index}" for index in range(30)}
    with redis_cluster.client() as client:
        for key, value in keys.items():
            client.set(key, value)
        assert {key: client.get(key) for key in keys} == keys
        owners = {client.keyslot(key) // 5462 for key in keys}
        client.delete(*keys)
    assert owners == {0, 1, 2}


def test_cluster_exposes_seed_url_and_startup_nodes(redis_cluster: RedisClusterServers) -> None:
    assert redis_cluster.url == redis_cluster.nodes[0].url
    assert redis_cluster.url.startswith("redis://127.0.0.1:")
    assert redis_cluster.startup_nodes == [("127.0.0.1", node.port) for node in redis_cluster.nodes]
