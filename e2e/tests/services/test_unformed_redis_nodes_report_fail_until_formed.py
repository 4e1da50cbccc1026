"""Cluster-mode nodes start unformed (state fail, no slots) and report ok once formed."""

from __future__ import annotations

import pytest

from harness.services import ClusterNodesFactory, form_cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def test_unformed_nodes_report_fail_until_formed(
    redis_cluster_nodes_factory: ClusterNodesFactory,
) -> None:
    nodes = redis_cluster_nodes_factory(6)

    for node in nodes:
        info = node.cluster_info()
        assert info["cluster_state"] == "fail", node.name
        assert info["cluster_slots_assigned"] == "0", node.name
        assert info["cluster_known_nodes"] == "1", node.name

    form_cluster(nodes, replicas=1)

    assert [node.cluster_state() for node in nodes] == ["ok"] * 6
