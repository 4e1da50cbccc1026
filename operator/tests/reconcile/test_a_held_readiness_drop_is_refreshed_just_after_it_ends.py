"""A settle that holds a readiness drop asks for a status refresh just after the hold ends.

Nothing else may change by then (a drop that lasts sends no further event), so
without it a held stack would stay Ready for as long as its pods stay not ready.
A replica still syncing asks for one after ``retry_seconds``; the sooner wins.
A cluster still converging (gossip not yet done when the Redis step stopped
waiting for it) asks for one after ``retry_seconds`` that runs the Redis step.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from retention_operator.reconcile import readiness_hold
from retention_operator.reconcile.stack import _Observed, _recheck
from retention_operator.redis_cluster import ClusterHealth
from retention_operator.settings import Settings

SETTINGS = Settings(retry_seconds=30)


# Six nodes, all answering, formed and ok: each case below changes what it is about.
_CLUSTER = ClusterHealth(
    answering=6, total=6, formed=True, state_ok=True, masters=3, replicas=3, message="cluster ok"
)


def _syncing() -> ClusterHealth:
    return replace(
        _CLUSTER,
        message="waiting for replicas to sync",
        syncing="demo-redis-3 is syncing from demo-redis-0",
    )


def test_a_held_drop_is_refreshed_just_after_the_hold_ends() -> None:
    when = _recheck(_Observed({}, hold_left=4.0), SETTINGS)
    assert when is not None and when.seconds == 4.0 + readiness_hold.RECHECK_MARGIN_SECONDS
    assert not when.redis_step


def test_nothing_held_or_syncing_asks_for_no_refresh() -> None:
    assert _recheck(_Observed({}), SETTINGS) is None


def test_the_sooner_of_a_hold_and_a_sync_wins() -> None:
    both = _Observed({}, cluster=_syncing(), hold_left=4.0)
    when = _recheck(both, SETTINGS)
    assert when is not None and when.seconds == pytest.approx(4.5)
    syncing = _recheck(_Observed({}, cluster=_syncing()), SETTINGS)
    assert syncing is not None and 24 <= syncing.seconds <= 36  # retry_seconds, jittered by 20 %
    assert not syncing.redis_step, "a sync needs no Redis step, only a fresh read"


def _assigning() -> ClusterHealth:
    # What the Redis step left on the real node when gossip was slower than its wait:
    # slots assigned on every master, not yet seen by every node.
    return replace(
        _CLUSTER,
        formed=False,
        state_ok=False,
        message="Waiting for slot assignment: 10923 of 16384 slots assigned.",
    )


def test_a_cluster_still_converging_asks_for_the_redis_step_again() -> None:
    when = _recheck(_Observed({}, cluster=_assigning()), SETTINGS)
    assert when is not None and 24 <= when.seconds <= 36
    assert when.redis_step


def test_a_cluster_with_a_node_not_answering_waits_for_the_statefulsets_event() -> None:
    # A pod that is not ready changes the StatefulSet's status when it becomes ready.
    down = replace(
        _CLUSTER,
        answering=5,
        formed=False,
        state_ok=False,
        replicas=2,
        message="demo-redis-5 does not answer",
    )
    assert _recheck(_Observed({}, cluster=down), SETTINGS) is None
