"""Fixtures for the Redis Cluster tests: harness nodes as addresses, a bounded wait.

Helpers are fixtures because test modules are imported in importlib mode and
cannot import each other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest
from redis.asyncio.cluster import RedisCluster

from harness.services import RedisServer
from retention_operator.redis_cluster import ClusterHealth, cluster_health
from retention_operator.redis_cluster.topology import NodeView, parse_cluster_nodes

#: The job stream and its group, as the queue names them (one slot by the hash tag).
STREAM, GROUP = "{demo}:jobs", "workers"
#: Entries in the stream, and how many of them a worker has read but not acknowledged.
ENTRIES, READ = 300, 120

Addresses = Callable[[Sequence[RedisServer]], list[tuple[str, int]]]
WaitHealthy = Callable[[Sequence[RedisServer]], Awaitable[ClusterHealth]]
CommandCalls = Callable[[RedisServer, str], int]


def _addresses(nodes: Sequence[RedisServer]) -> list[tuple[str, int]]:
    return [(node.host, node.port) for node in nodes]


@pytest.fixture
def addresses() -> Addresses:
    """The nodes as the reconciler passes them: ``(host, port)`` in ordinal order."""
    return _addresses


@pytest.fixture
def wait_healthy() -> WaitHealthy:
    """Poll cluster_health for up to 30 s until ok; fail with the last message otherwise."""

    async def wait(nodes: Sequence[RedisServer]) -> ClusterHealth:
        deadline = time.monotonic() + 30.0
        while True:
            health = await cluster_health(nodes=_addresses(nodes), password=None)
            if health.ok or time.monotonic() > deadline:
                assert health.ok, health.message
                return health
            await asyncio.sleep(0.2)

    return wait


@pytest.fixture
def command_calls() -> CommandCalls:
    """How often a command (e.g. ``cluster|meet``) ran on a node since it started."""

    def calls(node: RedisServer, command: str) -> int:
        with node.client() as conn:
            stats = conn.info("commandstats")
        entry = stats.get(f"cmdstat_{command}", {})
        return int(entry.get("calls", 0)) if isinstance(entry, dict) else 0

    return calls


async def fill(client: RedisCluster, keys: int) -> None:
    """``keys`` keys ``key:<n>`` over all slots, and the stream with READ entries pending."""
    for first in range(0, keys, 1000):
        last = min(keys, first + 1000)
        await client.mset_nonatomic({f"key:{n}": f"value {n}" for n in range(first, last)})
    await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for n in range(ENTRIES):
        await client.xadd(STREAM, {"job": str(n)})
    read = await client.xreadgroup(GROUP, "worker-1", {STREAM: ">"}, count=READ)
    assert len(read[0][1]) == READ


def replicated(master: RedisServer, *, seconds: float = 20.0) -> None:
    """Wait until ``master``'s replica has acknowledged every write so far (``WAIT 1``).

    A replica that has never completed its first sync cannot fail over
    (Redis counts its data as old since forever), and a new replica's first
    sync starts only after ``repl-diskless-sync-delay`` (5 s by default):
    a master killed before that loses its slots for good, as it would in
    production. Tests that kill a master kill it after this.
    """
    with master.client(timeout=seconds + 5) as conn:
        acked = conn.execute_command("WAIT", 1, int(seconds * 1000))
    assert acked >= 1, f"{master.name}: no replica acknowledged the writes in {seconds} s"


async def pending_ids(client: RedisCluster) -> list[str]:
    """The ids of the group's pending entries, in order."""
    pending = await client.xpending_range(STREAM, GROUP, "-", "+", ENTRIES)
    return [entry["message_id"] for entry in pending]


async def assert_all_there(client: RedisCluster, keys: int, pending: list[str]) -> None:
    """Every key with its value, every stream entry, the same pending ids."""
    values = await client.mget_nonatomic([f"key:{n}" for n in range(keys)])
    assert values == [f"value {n}" for n in range(keys)]
    assert await client.xlen(STREAM) == ENTRIES
    assert await pending_ids(client) == pending


def fresh_view(node_id: str, port: int) -> NodeView:
    """The view of a node that has just started: alone, a master, no slots, epoch 0."""
    lines = parse_cluster_nodes(f"{node_id} :{port}@{port + 1} myself,master - 0 0 0 connected\n")
    return NodeView(info={"cluster_state": "fail", "cluster_current_epoch": "0"}, lines=lines)


def cluster_views(
    order: Sequence[str],
    *,
    slots: dict[str, Sequence[tuple[int, int]]] | None = None,
    masters: dict[str, str] | None = None,
    markers: dict[str, str] | None = None,
    flags: dict[str, str] | None = None,
    alone: Sequence[str] = (),
    ghosts: Sequence[str] = (),
) -> list[NodeView]:
    """The views of nodes that all know each other, in ``order`` (ordinal order).

    ``slots``: ranges each master serves; ``masters``: replica -> its master;
    ``markers``: extra slot items on a node's own line (``[5->-b]``);
    ``flags``: extra flags others see on a node (``fail``); ``alone``: nodes
    that know only themselves (and that nobody knows); ``ghosts``: members
    everybody knows that have no pod (no view of their own).
    """
    slots, masters, markers, flags = slots or {}, masters or {}, markers or {}, flags or {}
    members = [node for node in order if node not in alone] + list(ghosts)
    every = [*order, *ghosts]

    def line(node: str, me: str) -> str:
        port = 7000 + 2 * every.index(node)
        role = "slave" if node in masters else "master"
        flag = ",".join(f for f in ("myself" if node == me else "", role, flags.get(node, "")) if f)
        link = "disconnected" if "fail" in flags.get(node, "") else "connected"
        items = [f"{a}-{b}" for a, b in slots.get(node, ())]
        if node == me and node in markers:
            items.append(markers[node])
        text = f"{node} 127.0.0.1:{port}@{port + 1} {flag} {masters.get(node, '-')} 0 0 1 {link}"
        return " ".join([text, *items]) + "\n"

    views = []
    for me in order:
        known = [me] if me in alone else members
        text = "".join(line(node, me) for node in known)
        views.append(NodeView(info={"cluster_state": "ok"}, lines=parse_cluster_nodes(text)))
    return views
