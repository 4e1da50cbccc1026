"""A cluster node stopped and started again keeps its port, node id and data."""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory, form_cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def test_restarted_master_comes_back_with_its_id_and_keys(
    redis_cluster_nodes_factory: ClusterNodesFactory,
) -> None:
    cluster = form_cluster(redis_cluster_nodes_factory(), replicas=1)
    with cluster.client() as client:
        client.set("restart:probe", "kept")
        owner_port = client.get_node_from_key("restart:probe").port
    node = next(node for node in cluster.nodes if node.port == owner_port)
    with node.client() as conn:
        node_id = conn.execute_command("CLUSTER MYID")

    node.stop()
    assert not node.running()
    node.start()

    cluster.wait_ok(timeout=30)
    assert node.port == owner_port
    with node.client() as conn:
        assert conn.execute_command("CLUSTER MYID") == node_id
        assert conn.execute_command("ROLE")[0] == "master"
    with cluster.client() as client:
        assert client.get("restart:probe") == "kept"
