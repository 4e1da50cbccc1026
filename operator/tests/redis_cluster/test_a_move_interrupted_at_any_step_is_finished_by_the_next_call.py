"""A slot move interrupted at any step is finished by the next call, from what the nodes report.

Real redis-server nodes: 3 shards with 10,000 keys over all slots and a job
stream whose consumer group has pending entries, grown to 5 shards, then
shrunk to 2. In each change, :func:`ensure_cluster` is cancelled at every
step boundary of a move in turn (after the target's SETSLOT IMPORTING, the
source's MIGRATING, GETKEYSINSLOT, MIGRATE, SETSLOT NODE on the target, on
the source): the task stops there, as an operator killed mid-move would,
with its connections to real servers cut. Each next call starts from the
nodes' views alone (nothing is kept between calls), completes or rolls
back what was left open, and goes on until the next interruption. At the
end no slot is left IMPORTING or MIGRATING anywhere, and every key, stream
entry and pending entry is there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.services import ClusterNodesFactory, RedisServer
from retention_operator.redis_cluster import SLOT_COUNT, ClusterHealth, ensure_cluster, moves

from .conftest import Addresses, assert_all_there, fill, pending_ids

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

KEYS = 10_000
# A step boundary: the pipeline after which the task is cancelled, and which one in the call.
BOUNDARIES = [
    ("IMPORTING", 1),  # the target opened the slots
    ("MIGRATING", 1),  # the source opened them too
    ("GETKEYSINSLOT", 1),  # the source listed the keys; none has moved
    ("MIGRATE", 1),  # the keys moved; the slots are still open on both
    ("NODE", 1),  # the target owns the slots; the source does not know yet
    ("NODE", 2),  # the source knows too; the other masters do not
]


def _step(commands: Sequence[Sequence[object]]) -> str:
    first = [str(part) for part in commands[0]] if commands else []
    if first[:2] == ["CLUSTER", "SETSLOT"]:
        return first[3]
    if first[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
        return "GETKEYSINSLOT"
    return first[0] if first else ""


async def test_every_interrupted_step_of_three_to_five_to_two_shards_is_finished(
    redis_cluster_nodes_factory: ClusterNodesFactory,
    addresses: Addresses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = redis_cluster_nodes_factory(5)
    await _until_ok(addresses(nodes[:3]), shards=3)
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes], decode_responses=True
    )
    cut: dict[str, object] = {}
    real_pipeline = moves.Sessions.pipeline

    async def pipeline(
        self: moves.Sessions, address: tuple[str, int], commands: Sequence[Sequence[object]]
    ) -> list[object]:
        replies = await real_pipeline(self, address, commands)
        if cut:
            step = _step(commands)
            counts = cut.setdefault("counts", {})
            assert isinstance(counts, dict)
            counts[step] = counts.get(step, 0) + 1
            if (step, counts[step]) == cut["at"]:
                cut["hit"] = True
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
                await asyncio.sleep(0)  # the cancellation lands here, at the boundary
        return replies

    monkeypatch.setattr(moves.Sessions, "pipeline", pipeline)
    try:
        await fill(client, KEYS)
        pending = await pending_ids(client)
        for shards in (5, 2):
            began = time.monotonic()
            for boundary in BOUNDARIES:
                cut.clear()
                cut["at"] = boundary
                task = asyncio.create_task(
                    ensure_cluster(
                        nodes=addresses(nodes), shards=shards, replicas_per_shard=0, password=None
                    )
                )
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert cut.get("hit"), f"{shards} shards: no move reached {boundary}"
                if boundary[0] in ("IMPORTING", "MIGRATING", "MIGRATE"):
                    assert _open_slots(nodes), f"{boundary} left no slot open"
            cut.clear()
            health = await _until_ok(addresses(nodes), shards=shards)
            seconds = time.monotonic() - began
            print(f"to {shards} shards, {KEYS} keys, 6 interruptions: {seconds:.1f} s")
            assert not _open_slots(nodes), "a slot was left IMPORTING or MIGRATING"
            counts = sorted(shard.slots for shard in health.shards)
            assert len(counts) == shards and sum(counts) == SLOT_COUNT
            assert counts[-1] - counts[0] <= 1, counts
            await assert_all_there(client, KEYS, pending)
    finally:
        await client.aclose()


async def _until_ok(nodes: list[tuple[str, int]], *, shards: int) -> ClusterHealth:
    deadline = time.monotonic() + 90
    while True:
        health = await ensure_cluster(
            nodes=nodes, shards=shards, replicas_per_shard=0, password=None
        )
        if health.ok or time.monotonic() > deadline:
            assert health.ok, health.message
            return health
        await asyncio.sleep(0.3)


def _open_slots(nodes: Sequence[RedisServer]) -> list[str]:
    """Every slot a node says it is MIGRATING or IMPORTING (redis-py's CLUSTER NODES parser)."""
    found = []
    for node in nodes:
        with node.client() as conn:
            lines = conn.execute_command("CLUSTER NODES").values()
        mine = next(line for line in lines if "myself" in line["flags"])
        found += [f"{node.name}: {m['state']} {m['slot']}" for m in mine["migrations"]]
    return found
