"""Only the leading replica (kopf peering) autoscales."""

from __future__ import annotations

import datetime as dt

from retention_operator.autoscaling.leadership import leads

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _peer(priority: int, *, seconds_ago: int = 5, lifetime: int = 60) -> dict[str, object]:
    seen = NOW - dt.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lastseen": seen.isoformat(), "lifetime": lifetime}


def test_the_highest_priority_leads_and_the_others_stand_by() -> None:
    peers = {"op-0": _peer(100), "op-1": _peer(99)}
    assert leads(peers, own_priority=100, now=NOW)
    assert not leads(peers, own_priority=99, now=NOW)


def test_a_dead_leader_hands_over() -> None:
    peers = {"op-0": _peer(100, seconds_ago=120), "op-1": _peer(99)}
    assert leads(peers, own_priority=99, now=NOW)


def test_equal_priorities_freeze_both_as_kopf_does() -> None:
    peers = {"a": _peer(5), "b": _peer(5)}
    assert not leads(peers, own_priority=5, now=NOW)


def test_no_peers_yet_means_lead() -> None:
    assert leads(None, own_priority=0, now=NOW)
    assert leads({"junk": "x", "bad": {"priority": 1}}, own_priority=0, now=NOW)
