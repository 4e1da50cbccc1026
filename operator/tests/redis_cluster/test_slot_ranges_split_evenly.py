"""The 16384 hash slots split evenly and contiguously; range arithmetic for partial states."""

from __future__ import annotations

import itertools

import pytest

from retention_operator.redis_cluster import SLOT_COUNT, slot_ranges
from retention_operator.redis_cluster.slots import count_slots, missing_ranges


def test_three_shards_match_redis_cli() -> None:
    # redis-cli --cluster create gives 0-5460, 5461-10922, 10923-16383; the
    # larger share goes first here, which is as even and just as valid.
    assert slot_ranges(3) == [(0, 5461), (5462, 10922), (10923, 16383)]


def test_one_shard_owns_everything() -> None:
    assert slot_ranges(1) == [(0, SLOT_COUNT - 1)]


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 7, 10, 100, 16383, 16384])
def test_ranges_are_contiguous_cover_all_and_differ_by_at_most_one(shards: int) -> None:
    ranges = slot_ranges(shards)
    assert len(ranges) == shards
    assert ranges[0][0] == 0
    assert ranges[-1][1] == SLOT_COUNT - 1
    assert all(prev[1] + 1 == nxt[0] for prev, nxt in itertools.pairwise(ranges))
    sizes = {last - first + 1 for first, last in ranges}
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("shards", [0, -1, SLOT_COUNT + 1])
def test_impossible_shard_counts_are_refused(shards: int) -> None:
    with pytest.raises(ValueError, match="shards"):
        slot_ranges(shards)


def test_missing_ranges_leave_out_owned_slots() -> None:
    assert missing_ranges((0, 99), []) == [(0, 99)]
    assert missing_ranges((0, 99), [(0, 99)]) == []
    assert missing_ranges((0, 99), [(10, 19), (50, 200)]) == [(0, 9), (20, 49)]
    assert missing_ranges((10, 20), [(0, 5), (15, 15), (30, 40)]) == [(10, 14), (16, 20)]
    assert missing_ranges((0, 9), [(5, 7), (0, 6)]) == [(8, 9)]


def test_count_slots_counts_overlaps_once() -> None:
    assert count_slots([]) == 0
    assert count_slots([(0, 9), (5, 14), (20, 20)]) == 16
    assert count_slots(slot_ranges(7)) == SLOT_COUNT
