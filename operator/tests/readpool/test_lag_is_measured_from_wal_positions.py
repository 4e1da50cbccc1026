"""Lag from WAL positions: an idle primary is no lag, a stuck replica's lag grows with time."""

from __future__ import annotations

import pytest

from retention_operator.readpool.membership import LagTracker, decide, parse_lsn


def test_lsn_text_parses_as_postgres_orders_it() -> None:
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("garbage")


def test_an_idle_primary_never_looks_lagged() -> None:
    tracker = LagTracker()
    for second in range(10):
        # No new WAL: the replica has replayed all there is.
        assert tracker.observe(now=float(second), primary_lsn=100, replay_lsn=100) == 0.0


def test_a_replica_that_stops_replaying_lags_by_the_time_since_it_fell_behind() -> None:
    tracker = LagTracker()
    assert tracker.observe(now=0.0, primary_lsn=100, replay_lsn=100) == 0.0
    # Writes go on; replay stops at 100.
    assert tracker.observe(now=0.5, primary_lsn=150, replay_lsn=100) == 0.0
    assert tracker.observe(now=1.0, primary_lsn=200, replay_lsn=100) == 0.5
    assert tracker.observe(now=2.0, primary_lsn=300, replay_lsn=100) == 1.5
    # It catches up with what the primary had at 1.0 but not at 2.0 or now.
    assert tracker.observe(now=2.5, primary_lsn=320, replay_lsn=200) == 0.5
    assert tracker.observe(now=3.0, primary_lsn=320, replay_lsn=320) == 0.0


def test_a_replica_leaves_past_the_bound_and_rejoins_well_within_it() -> None:
    assert decide(was_in_pool=True, lag=0.9, error=None, max_lag=1.0).in_pool
    out = decide(was_in_pool=True, lag=1.2, error=None, max_lag=1.0)
    assert not out.in_pool and "1.2s is past maxLagSeconds 1s" in out.message
    assert not decide(was_in_pool=False, lag=0.8, error=None, max_lag=1.0).in_pool
    assert decide(was_in_pool=False, lag=0.4, error=None, max_lag=1.0).in_pool


def test_an_unreadable_replica_is_out_with_the_reason() -> None:
    verdict = decide(was_in_pool=True, lag=None, error="cannot be read: refused", max_lag=1.0)
    assert not verdict.in_pool and verdict.message == "cannot be read: refused"
