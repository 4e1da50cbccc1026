"""A queue client that first met its Redis Cluster while it named dead addresses reaches it later.

Redis names the cluster's nodes by IP (``cluster-preferred-endpoint-type ip``).
When a stack is deleted and applied again, its Redis pods come back with their
old nodes.conf and, for a few seconds, CLUSTER SLOTS lists the old pods'
addresses. redis-py's cluster client by default then keeps only the addresses
it was told (``dynamic_startup_nodes``) and drops the Service it was given, so
a worker that started in those seconds could never reach Redis again: it
consumed nothing until its pod was replaced. The client must keep the URL's
host as a way back in.

Here a real one-node cluster is reached by the name ``localhost`` and announces
a port nobody listens on (its ``cluster-announce-port``), as the old pods'
addresses were; then it announces its own port again.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import exceptions as redis_errors

import retention_contract as contract
from harness.procs import free_port
from harness.redis_servers import ClusterNodesFactory, wait_cluster_ok
from retention_workloads import queue, settings

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def _announced_ports(node_client) -> set[int]:
    return {int(section[2][1]) for section in node_client.execute_command("CLUSTER SLOTS")}


async def _group_created(jobs: queue.Queue, *, seconds: float) -> BaseException | None:
    """Create the stream's group, trying for ``seconds``; None once done, else the last error."""
    deadline = time.monotonic() + seconds
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            await queue.ensure_group(jobs)
            return None
        except (redis_errors.RedisError, redis_errors.RedisClusterException, OSError) as exc:
            last = exc
            await asyncio.sleep(0.2)
    return last or TimeoutError("no attempt made")


async def test_the_url_host_stays_a_way_back_in(
    redis_cluster_nodes_factory: ClusterNodesFactory,
) -> None:
    (node,) = redis_cluster_nodes_factory(1)
    admin = node.client()
    admin.execute_command("CLUSTER ADDSLOTSRANGE", 0, 16383)
    wait_cluster_ok([node])
    dead = free_port()
    admin.config_set("cluster-announce-port", dead)
    assert _announced_ports(admin) == {dead}

    config = settings.load(
        {
            contract.ENV_REDIS_URL: f"redis://localhost:{node.port}",
            contract.ENV_REDIS_CLUSTER: "true",
        }
    )
    jobs = queue.connect(config)
    try:
        failed = await _group_created(jobs, seconds=2)
        assert failed is not None, "a cluster that names only a dead port cannot be reached"

        admin.config_set("cluster-announce-port", 0)
        assert _announced_ports(admin) == {node.port}
        failed = await _group_created(jobs, seconds=20)
        assert failed is None, f"the client never reached Redis again: {failed!r}"
        assert admin.xinfo_groups(config.stream)[0]["name"] == config.group
    finally:
        await jobs.close()
