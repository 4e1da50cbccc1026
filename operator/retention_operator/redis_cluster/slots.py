"""Hash slots of a Redis Cluster: the even split over shards, and range arithmetic.

Pure functions, no I/O. Callers: :mod:`.plan` (which slots a bootstrap may
still assign) and :mod:`.health` (how many slots are assigned).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Every Redis Cluster has exactly this many hash slots (0 .. 16383).
SLOT_COUNT = 16384

#: An inclusive range of slots, ``(first, last)``, as CLUSTER ADDSLOTSRANGE takes it.
SlotRange = tuple[int, int]


def slot_ranges(shards: int) -> list[SlotRange]:
    """Split the 16384 slots into ``shards`` contiguous, inclusive ranges.

    The sizes differ by at most one and the larger ranges come first, so
    ``slot_ranges(3)`` is ``[(0, 5461), (5462, 10922), (10923, 16383)]``.
    Raises ValueError unless ``1 <= shards <= 16384``.
    """
    if not 1 <= shards <= SLOT_COUNT:
        raise ValueError(f"shards must be between 1 and {SLOT_COUNT}, got {shards}")
    size, extra = divmod(SLOT_COUNT, shards)
    ranges: list[SlotRange] = []
    first = 0
    for index in range(shards):
        last = first + size - 1 + (1 if index < extra else 0)
        ranges.append((first, last))
        first = last + 1
    return ranges


def missing_ranges(wanted: SlotRange, taken: Iterable[SlotRange]) -> list[SlotRange]:
    """Return the parts of ``wanted`` that no range in ``taken`` covers, in order.

    Used so a bootstrap only ever assigns slots nobody owns yet. ``taken`` may
    overlap and come in any order; an empty result means nothing is left.
    """
    first, last = wanted
    gaps: list[SlotRange] = []
    cursor = first
    for start, end in sorted(taken):
        if end < cursor or start > last:
            continue
        if start > cursor:
            gaps.append((cursor, start - 1))
        cursor = max(cursor, end + 1)
        if cursor > last:
            return gaps
    if cursor <= last:
        gaps.append((cursor, last))
    return gaps


def count_slots(ranges: Iterable[SlotRange]) -> int:
    """Return how many distinct slots the (possibly overlapping) ``ranges`` cover."""
    covered = 0
    cursor = 0
    for start, end in sorted(ranges):
        start = max(start, cursor)
        if end >= start:
            covered += end - start + 1
            cursor = end + 1
    return covered
