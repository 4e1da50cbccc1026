"""``status.redis`` of a managed Redis Cluster, and the failovers it tells of: pure functions.

The status read gives a :class:`.ClusterHealth` (CLUSTER INFO and CLUSTER
NODES of every pod, no writes); :func:`redis_status` turns it into the
status block: the shards asked for, the masters serving slots and the
replicas attached, each master's slots and replicas (and those of its
replicas that are not yet linked and synced), and the last failover.

A failover is the one thing the block remembers, because no node reports
when one happened: a shard whose slots (the exact ranges) are now served by
the node that was its replica in the status written before. Redis' own
failover after a master died and one the operator asked for while a master
leaves both count; slots that move in batches never keep a shard's exact
ranges under a new master, so a resharding is not mistaken for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retention_operator.redis_cluster import ClusterHealth, ShardHealth

Manifest = dict[str, Any]

#: Event reason of a failover seen in the cluster.
REASON_FAILOVER = "FailoverObserved"
# Ranges listed per master in the status; past this, a count of the rest.
_MAX_RANGES = 32


@dataclass(frozen=True)
class Failover:
    """A shard's slots now served by its former replica."""

    master: str
    previous_master: str
    slots: int
    ranges: str

    @property
    def message(self) -> str:
        return (
            f"{self.master} took over {self.slots} slots ({self.ranges}) from "
            f"{self.previous_master}, whose replica it was"
        )


def redis_status(
    previous: Manifest | None, cluster: ClusterHealth, *, shards: int, now: str
) -> tuple[Manifest, Failover | None]:
    """The ``status.redis`` block, and the failover it newly records (None if none).

    ``previous`` is the stored ``status.redis`` (or None); ``now`` the time
    stamp of a newly seen failover. A failover already recorded is not
    recorded (or returned) again.
    """
    previous = previous or {}
    masters = [_master_entry(shard) for shard in cluster.shards]
    last = previous.get("lastFailover")
    failover = _failover(previous.get("slotsPerMaster") or [], masters)
    if failover is not None and not _recorded(last, failover):
        last = {
            "time": now,
            "master": failover.master,
            "previousMaster": failover.previous_master,
            "slots": failover.slots,
        }
    else:
        failover = None
    block: Manifest = {
        "shards": shards,
        "masters": cluster.masters,
        "replicas": cluster.replicas,
        "slotsPerMaster": masters,
    }
    if last:
        block["lastFailover"] = last
    return block, failover


def _master_entry(shard: ShardHealth) -> Manifest:
    entry: Manifest = {
        "master": shard.master,
        "slots": shard.slots,
        "ranges": ranges_text(shard.ranges),
        "replicas": list(shard.replicas),
    }
    if shard.failing:
        entry["failing"] = True
    if shard.syncing:
        entry["syncing"] = list(shard.syncing)
    return entry


def ranges_text(ranges: Sequence[tuple[int, int]]) -> str:
    """``0-5460,10923`` (a single slot alone), the first 32 ranges and a count of the rest."""
    parts = [f"{first}-{last}" if last != first else str(first) for first, last in ranges]
    if len(parts) > _MAX_RANGES:
        parts = [*parts[:_MAX_RANGES], f"+{len(parts) - _MAX_RANGES} more"]
    return ",".join(parts)


def _failover(before: list[Manifest], now: list[Manifest]) -> Failover | None:
    for entry in now:
        for old in before:
            if (
                old.get("ranges") == entry["ranges"]
                and old.get("master") != entry["master"]
                and entry["master"] in (old.get("replicas") or [])
            ):
                return Failover(
                    master=entry["master"],
                    previous_master=str(old.get("master")),
                    slots=entry["slots"],
                    ranges=entry["ranges"],
                )
    return None


def _recorded(last: Manifest | None, failover: Failover) -> bool:
    return bool(last) and (
        (last or {}).get("master") == failover.master
        and (last or {}).get("previousMaster") == failover.previous_master
    )
