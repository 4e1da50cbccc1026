"""With requirepass set, bootstrap and health use the password; a wrong one never raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.redis_servers import RedisServer
from harness.service_base import free_ports
from retention_operator.redis_cluster import cluster_health, ensure_cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

PASSWORD = "s3cret-for-tests"
WRONG_PASSWORD = "not-the-password"


@pytest.fixture
def password_nodes(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Two unformed cluster-mode nodes with requirepass and masterauth.

    The node factory starts nodes without a password, so these are built from
    the harness's RedisServer directly, which writes both settings.
    """
    ports = free_ports(4)
    nodes = [
        RedisServer(
            name=f"auth-node-{index}",
            port=ports[2 * index],
            cluster_bus_port=ports[2 * index + 1],
            dir=tmp_path / f"auth-node-{index}",
            log_dir=tmp_path,
            password=PASSWORD,
        )
        for index in range(2)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def test_bootstrap_and_health_with_a_password(password_nodes: list[RedisServer]) -> None:
    addresses = [(node.host, node.port) for node in password_nodes]

    wrong = await ensure_cluster(
        nodes=addresses, shards=1, replicas_per_shard=1, password=WRONG_PASSWORD, timeout=1.0
    )
    assert (wrong.answering, wrong.total) == (0, 2)
    none = await cluster_health(nodes=addresses, password=None, timeout=1.0)
    assert none.answering == 0

    await ensure_cluster(nodes=addresses, shards=1, replicas_per_shard=1, password=PASSWORD)
    for _ in range(150):
        health = await cluster_health(nodes=addresses, password=PASSWORD)
        if health.ok:
            break
        await asyncio.sleep(0.2)
    assert health.message == "cluster ok: 1 shard, 1 replica, 16384 slots"
