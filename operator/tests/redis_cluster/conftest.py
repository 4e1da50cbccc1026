"""Fixtures for the Redis Cluster tests: harness nodes as addresses, a bounded wait.

Helpers are fixtures because test modules are imported in importlib mode and
cannot import each other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest

from harness.services import RedisServer
from retention_operator.redis_cluster import ClusterHealth, cluster_health
from retention_operator.redis_cluster.topology import NodeView, parse_cluster_nodes

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
