"""From 3 to 4 to 2 shards, slots move with their keys: no key, entry or pending job lost.

Real redis-server nodes: six formed as 3 shards with a replica each, filled
with 10,000 keys over all slots and a job stream with a consumer group that
has entries read but not acknowledged (the queue's hash tag keeps both in one
slot). Two more nodes start (pods 6 and 7 of a grown StatefulSet) and
``ensure_cluster`` is asked for 4 shards; then, with the same eight nodes,
for 2: the masters past the first four pods give their slots away first,
then they and their replicas leave, and the StatefulSet may shrink.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory, RedisServer
from retention_operator.redis_cluster import SLOT_COUNT, ClusterHealth, ensure_cluster

from .conftest import (
    ENTRIES,
    GROUP,
    READ,
    STREAM,
    Addresses,
    WaitHealthy,
    assert_all_there,
    fill,
    pending_ids,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

KEYS = 10_000


async def test_three_to_four_to_two_shards_keeps_every_key_and_the_pending_list(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
) -> None:
    nodes = redis_cluster_nodes_factory(6)
    await _converge(addresses(nodes), shards=3)
    await wait_healthy(nodes)
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes],
        decode_responses=True,
    )
    try:
        await fill(client, KEYS)
        pending = await pending_ids(client)
        assert len(pending) == READ

        grown = nodes + redis_cluster_nodes_factory(2)
        began = time.monotonic()
        seen: list[ClusterHealth] = []
        health = await _converge(addresses(grown), shards=4, seen=seen)
        print(f"3 -> 4 shards, {KEYS} keys: {time.monotonic() - began:.1f} s")
        _assert_balanced(health, shards=4)
        # The move said how far it was: before the first batch, then about every
        # two seconds while it ran (none if it was done within its first round
        # of a second, as on an idle machine), fewer slots left each time (a
        # report right after the last batch finds nothing left to move).
        moving = [h for h in seen if h.resharding]
        assert moving and seen[: len(moving)] == moving, "no progress while slots moved"
        assert all("of 4096 slots to shard 4 of 4" in h.moving for h in moving)
        left = [int(h.moving.split()[1]) for h in moving]
        assert left == sorted(left, reverse=True) and left[0] == 4096, left
        await wait_healthy(grown)
        # A client that knew only the old nodes follows MOVED to every key.
        await assert_all_there(client, KEYS, pending)

        began = time.monotonic()
        seen = []
        health = await _converge(addresses(grown), shards=2, seen=seen)
        print(f"4 -> 2 shards, {KEYS} keys: {time.monotonic() - began:.1f} s")
        _assert_balanced(health, shards=2)
        # However short, the move is reported when it starts.
        assert any(h.resharding for h in seen), [h.message for h in seen]
        assert health.released, health.message
        staying, leaving = grown[:4], grown[4:]
        await wait_healthy(staying)
        for node in leaving:
            assert node.cluster_info()["cluster_known_nodes"] == "1"
            assert _keys(node) == 0
        await assert_all_there(client, KEYS, pending)
        # The group goes on from where it was: the unread entries come next.
        rest = await client.xreadgroup(GROUP, "worker-2", {STREAM: ">"}, count=ENTRIES)
        assert len(rest[0][1]) == ENTRIES - READ
    finally:
        await client.aclose()


async def _converge(
    nodes: list[tuple[str, int]],
    *,
    shards: int,
    replicas: int = 1,
    seen: list[ClusterHealth] | None = None,
) -> ClusterHealth:
    """Call ensure_cluster as the reconciler would, once per visit, until it is done.

    ``seen`` collects what the moves report while they run.
    """

    async def progress(health: ClusterHealth) -> bool:
        if seen is not None:
            seen.append(health)
        return True

    deadline = time.monotonic() + 90
    while True:
        health = await ensure_cluster(
            nodes=nodes,
            shards=shards,
            replicas_per_shard=replicas,
            password=None,
            on_progress=progress,
        )
        if health.ok or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.5)


def _assert_balanced(health: ClusterHealth, *, shards: int) -> None:
    assert health.ok, health.message
    assert (health.masters, health.replicas) == (shards, shards)
    counts = sorted(shard.slots for shard in health.shards)
    assert sum(counts) == SLOT_COUNT
    assert counts[-1] - counts[0] <= 1, counts
    assert all(len(shard.replicas) == 1 for shard in health.shards), health.shards


def _keys(node: RedisServer) -> int:
    with node.client() as conn:
        return int(conn.dbsize())


async def test_a_new_master_without_replicas_gets_its_slots_in_one_call(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    wait_healthy: WaitHealthy,
) -> None:
    """Slots move only once the new master reports ok: before, it refuses MIGRATE (CLUSTERDOWN)."""
    nodes = redis_cluster_nodes_factory(2)
    health = await _converge(addresses(nodes), shards=2, replicas=0)
    assert health.ok, health.message
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes],
        decode_responses=True,
    )
    try:
        await client.mset_nonatomic({f"key:{n}": f"value {n}" for n in range(1000)})
        grown = nodes + redis_cluster_nodes_factory(1)

        # No replica to attach first: the moves follow the MEET directly.
        health = await ensure_cluster(
            nodes=addresses(grown), shards=3, replicas_per_shard=0, password=None
        )

        assert health.ok, health.message
        counts = sorted(shard.slots for shard in health.shards)
        assert counts == [5461, 5461, 5462], counts
        values = await client.mget_nonatomic([f"key:{n}" for n in range(1000)])
        assert values == [f"value {n}" for n in range(1000)]
    finally:
        await client.aclose()
