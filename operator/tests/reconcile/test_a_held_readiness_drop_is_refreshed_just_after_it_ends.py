"""A settle that holds a readiness drop asks for a status refresh just after the hold ends.

Nothing else may change by then (a drop that lasts sends no further event), so
without it a held stack would stay Ready for as long as its pods stay not ready.
A replica still syncing asks for one after ``retry_seconds``; the sooner wins.
"""

from __future__ import annotations

import pytest

from retention_operator.reconcile import readiness_hold
from retention_operator.reconcile.stack import _Observed, _recheck
from retention_operator.redis_cluster import ClusterHealth
from retention_operator.settings import Settings

SETTINGS = Settings(retry_seconds=30)


def _syncing() -> ClusterHealth:
    return ClusterHealth(
        answering=6,
        total=6,
        formed=True,
        state_ok=True,
        masters=3,
        replicas=3,
        message="waiting for replicas to sync",
        syncing="demo-redis-3 is syncing from demo-redis-0",
    )


def test_a_held_drop_is_refreshed_just_after_the_hold_ends() -> None:
    seconds = _recheck(_Observed({}, hold_left=4.0), SETTINGS)
    assert seconds == 4.0 + readiness_hold.RECHECK_MARGIN_SECONDS


def test_nothing_held_or_syncing_asks_for_no_refresh() -> None:
    assert _recheck(_Observed({}), SETTINGS) is None


def test_the_sooner_of_a_hold_and_a_sync_wins() -> None:
    both = _Observed({}, cluster=_syncing(), hold_left=4.0)
    assert _recheck(both, SETTINGS) == pytest.approx(4.5)
    syncing = _recheck(_Observed({}, cluster=_syncing()), SETTINGS)
    assert syncing is not None and 24 <= syncing <= 36  # retry_seconds, jittered by 20 %
