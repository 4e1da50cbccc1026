"""Health names the nodes that do not answer and what else it waits for."""

from __future__ import annotations

from retention_operator.redis_cluster.connection import Probe
from retention_operator.redis_cluster.health import assess

from .conftest import fresh_view as _fresh


def test_health_names_the_nodes_that_do_not_answer() -> None:
    probes = [
        Probe(address=("127.0.0.1", 7000 + index), view=_fresh(f"n{index}", 7000))
        for index in range(2)
    ]
    probes.append(Probe(address=("127.0.0.1", 7009), view=None, error="ConnectionError"))
    health = assess(probes)
    assert (health.answering, health.total, health.formed, health.state_ok) == (2, 3, False, False)
    assert health.message == "2/3 Redis nodes answering; waiting for 127.0.0.1:7009."


def test_health_waits_for_fresh_nodes_to_meet() -> None:
    probes = [
        Probe(address=("127.0.0.1", 7000 + index), view=_fresh(f"n{index}", 7000 + index))
        for index in range(3)
    ]
    health = assess(probes)
    assert (health.answering, health.formed, health.masters, health.replicas) == (3, False, 0, 0)
    assert health.message == "Waiting for all 3 nodes to know each other (one knows only 1)."
