"""The API answers 503 with Retry-After while its Redis is unreachable, never 500.

Clients (and the project's own load generators) retry after Retry-After;
the window is short in practice: a Service's endpoints catching up after the
Redis pods start, a failover.
"""

from __future__ import annotations

import httpx
import pytest

import retention_contract as contract
from harness.procs import free_port

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_a_job_posted_while_redis_is_down_gets_503_and_retry_after(standalone_backend, workloads):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    _, url = workloads.api(**{contract.ENV_REDIS_URL: nowhere})
    reply = httpx.post(f"{url}/v1/jobs", json={"task": "t", "payload": {}}, timeout=30)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "1"


def test_a_job_posted_before_the_redis_cluster_is_formed_gets_503_not_500(
    standalone_backend, workloads, redis_cluster_nodes_factory
):
    # Cluster-mode nodes that nobody has formed yet: the cluster client finds
    # no slot covered, the state a new stack's Redis is in for its first seconds.
    nodes = redis_cluster_nodes_factory(3)
    unformed = f"redis://127.0.0.1:{nodes[0].port}/0"
    _, url = workloads.api(**{contract.ENV_REDIS_URL: unformed, contract.ENV_REDIS_CLUSTER: "true"})
    reply = httpx.post(f"{url}/v1/jobs", json={"task": "t", "payload": {}}, timeout=30)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "1"
