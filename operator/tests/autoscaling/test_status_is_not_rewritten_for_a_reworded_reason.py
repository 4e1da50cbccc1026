"""A reason that only restates a growing count is not worth a status write, however long it runs.

With a signal missing, the reason reads "no p95 ... for N ticks" and N grows
every tick; a thousand stacks in that state must still write nothing at rest.
"""

from __future__ import annotations

from retention_operator.autoscaling.report import needs_write


def _status(ticks: int) -> dict[str, object]:
    block = {
        "desiredReplicas": 2,
        "lastDecision": "Hold",
        "lastReason": f"Kept the API at 2 replicas: no p95 or request rate for {ticks} ticks.",
        "failedTicks": ticks,
    }
    return {"autoscaling": {"api": block}}


def test_a_reworded_reason_and_a_grown_count_write_nothing_even_after_the_refresh() -> None:
    assert not needs_write(_status(7), _status(13), since_last=3600, refresh=30)


def test_a_reason_rides_along_with_a_write_that_matters() -> None:
    changed = _status(13)
    changed["autoscaling"]["api"]["desiredReplicas"] = 3  # type: ignore[index]
    assert needs_write(_status(7), changed, since_last=1, refresh=30)
