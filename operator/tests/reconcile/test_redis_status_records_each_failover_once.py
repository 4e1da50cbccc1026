"""status.redis lists each master; its replica serving its exact slots is a failover, once."""

from __future__ import annotations

from retention_operator.reconcile.redis_status import ranges_text, redis_status
from retention_operator.redis_cluster import ClusterHealth, ShardHealth

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:09:00Z"


def _cluster(*shards: ShardHealth) -> ClusterHealth:
    return ClusterHealth(
        answering=6,
        total=6,
        formed=True,
        state_ok=True,
        masters=sum(1 for s in shards if not s.failing),
        replicas=sum(len(s.replicas) for s in shards),
        message="",
        shards=shards,
    )


def _shard(
    master: str, first: int, last: int, *replicas: str, failing: bool = False
) -> ShardHealth:
    return ShardHealth(
        master=master,
        slots=last - first + 1,
        replicas=replicas,
        ranges=((first, last),),
        failing=failing,
    )


FORMED = _cluster(
    _shard("r-0", 0, 5460, "r-3"),
    _shard("r-1", 5461, 10922, "r-4"),
    _shard("r-2", 10923, 16383, "r-5"),
)


def test_the_block_lists_each_master_with_its_slots_and_replicas() -> None:
    block, failover = redis_status(None, FORMED, shards=3, now=T0)

    assert failover is None
    assert (block["shards"], block["masters"], block["replicas"]) == (3, 3, 3)
    assert block["slotsPerMaster"][0] == {
        "master": "r-0",
        "slots": 5461,
        "ranges": "0-5460",
        "replicas": ["r-3"],
    }
    assert "lastFailover" not in block


def test_a_replica_serving_its_masters_slots_is_recorded_once() -> None:
    first, _ = redis_status(None, FORMED, shards=3, now=T0)
    # r-0 died: the others still name it master of its slots, failing.
    dying = _cluster(
        _shard("r-0", 0, 5460, "r-3", failing=True),
        _shard("r-1", 5461, 10922, "r-4"),
        _shard("r-2", 10923, 16383, "r-5"),
    )
    second, none = redis_status(first, dying, shards=3, now=T1)
    assert none is None and second["slotsPerMaster"][0]["failing"] is True
    # r-3 took over; r-0 came back as its replica.
    after = _cluster(
        _shard("r-3", 0, 5460, "r-0"),
        _shard("r-1", 5461, 10922, "r-4"),
        _shard("r-2", 10923, 16383, "r-5"),
    )

    third, failover = redis_status(second, after, shards=3, now=T2)

    assert failover is not None
    assert (failover.master, failover.previous_master, failover.slots) == ("r-3", "r-0", 5461)
    assert "r-3 took over 5461 slots (0-5460) from r-0" in failover.message
    assert third["lastFailover"] == {
        "time": T2,
        "master": "r-3",
        "previousMaster": "r-0",
        "slots": 5461,
    }
    # Read again (a later refresh): the same failover is not new.
    kept, again = redis_status(third, after, shards=3, now=T2)
    assert again is None and kept["lastFailover"] == third["lastFailover"]


def test_slots_moving_to_a_new_master_are_no_failover() -> None:
    before = _cluster(_shard("r-0", 0, 8191, "r-2"), _shard("r-1", 8192, 16383, "r-3"))
    stored, _ = redis_status(None, before, shards=3, now=T0)
    # Part of r-0's slots moved to r-4, a new master whose replica is r-5.
    moving = _cluster(
        _shard("r-0", 0, 5460, "r-2"),
        _shard("r-1", 8192, 16383, "r-3"),
        _shard("r-4", 5461, 8191, "r-5"),
    )

    block, failover = redis_status(stored, moving, shards=3, now=T1)

    assert failover is None and "lastFailover" not in block


def test_many_ranges_are_cut_to_a_count() -> None:
    ranges = [(slot, slot) for slot in range(0, 80, 2)]

    text = ranges_text(ranges)

    assert text.startswith("0,2,4,") and text.endswith(",+8 more")
    assert ranges_text([(0, 5460), (10923, 10923)]) == "0-5460,10923"
