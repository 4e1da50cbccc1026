"""The autoscaling part of a stack's status, and when it is worth writing: pure functions.

The loop builds a patch per stack each tick with :func:`status_patch` and sends
it only when :func:`needs_write` says so. A change that matters to a reader
(replicas, the kind of decision, a scale, a signal appearing or going missing)
is written at once; drift of the numbers alone (latency, rates, the backlog,
the wording of the reason) at most every ``refresh`` seconds. A quiet tick
therefore writes nothing, and a busy stack does not write on every tick.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.state import Decision

Manifest = dict[str, Any]

# Fields whose value may change every tick; only their presence is material.
_DRIFTING = frozenset(
    {
        "p95Milliseconds",
        "requestsPerSecond",
        "backlog",
        "lag",
        "pending",
        "jobsPerSecond",
        "queueWaitSeconds",
        "lastReason",
        "failedTicks",
        "errorLastDay",
        "trust",
    }
)
# Fields that never cause a write by themselves: a count of failed reads, and
# the reason, whose wording restates counts and times ("no p95 for 13 ticks")
# and so changes every tick while nothing happens. Both ride along with the
# next write that matters; without this, a thousand stacks whose metrics are
# missing would each write every refresh period at rest.
_SILENT = frozenset({"failedTicks", "lastReason"})
# Derived numbers whose appearance matters to no one either (a rate needs two samples,
# so it appears on the second tick): left out of the material view altogether.
_DERIVED = frozenset({"jobsPerSecond", "queueWaitSeconds"})
# The keys of status this module owns; the reconciler owns the rest.
OWNED_KEYS = ("autoscaling", "p95Milliseconds", "backlog")


def timestamp(at: float) -> str:
    """RFC 3339 UTC time, to the second, as Kubernetes writes times."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def component_status(
    *, decision: Decision, last_scale_time: str | None, metrics: Manifest
) -> Manifest:
    """One component's block of ``status.autoscaling`` (metric values None when missing);
    ``lastDecision`` is the Decision's own kind."""
    return {
        **metrics,
        "desiredReplicas": decision.desired,
        "lastDecision": decision.kind,
        "lastReason": decision.reason[:1024],
        "lastScaleTime": last_scale_time,
        "failedTicks": decision.state.failed_ticks,
        "forecast": forecast_status(decision.state.forecast),
    }


def forecast_status(learned: forecast.Forecast | None) -> Manifest | None:
    """``status.autoscaling.<component>.forecast``: whether the forecast is followed now
    (``inUse``), how far (``trust``, 0 to 1), the days learned, and its relative error
    over the last day (None before any minute was compared). None while it is off: a
    merge patch then removes the block."""
    if learned is None:
        return None
    trust = forecast.trust(learned)
    return {
        "inUse": trust > 0,
        "trust": round(trust, 2),
        "daysLearned": forecast.days_known(learned),
        "errorLastDay": _round(forecast.error_last_day(learned), 3),
    }


def api_metrics(*, p95_ms: float | None, rps: float | None) -> Manifest:
    """The API's metric fields, rounded so that noise below display precision is no change."""
    return {"p95Milliseconds": _round(p95_ms, 1), "requestsPerSecond": _round(rps, 2)}


def worker_metrics(
    *,
    backlog: int | None,
    lag: int | None,
    pending: int | None,
    jobs_per_second: float | None,
    queue_wait_seconds: float | None,
) -> Manifest:
    """The workers' metric fields, rounded as :func:`api_metrics` rounds."""
    return {
        "backlog": backlog,
        "lag": lag,
        "pending": pending,
        "jobsPerSecond": _round(jobs_per_second, 2),
        "queueWaitSeconds": _round(queue_wait_seconds, 1),
    }


def status_patch(*, api: Manifest | None, workers: Manifest | None) -> Manifest:
    """The merge patch of the keys the loop owns; a component without a block is left out."""
    autoscaling: Manifest = {}
    patch: Manifest = {"autoscaling": autoscaling}
    if api is not None:
        autoscaling["api"] = api
        patch["p95Milliseconds"] = api.get("p95Milliseconds")
    if workers is not None:
        autoscaling["workers"] = workers
        patch["backlog"] = workers.get("backlog")
    return patch


def owned(status: Manifest | None) -> Manifest:
    """The keys the loop owns, taken from a stored status (to compare a patch with)."""
    status = status or {}
    return {key: status[key] for key in OWNED_KEYS if key in status}


def needs_write(
    previous: Manifest | None, patch: Manifest, *, since_last: float, refresh: float
) -> bool:
    """Whether ``patch`` is worth sending, given what was last written (or stored).

    True when a material field changed; when only drifting numbers changed,
    True once ``since_last`` (seconds since the last write) reaches ``refresh``.

    Two views of a status define it, compared between what the patch would make of
    ``previous`` (a JSON merge patch) and ``previous``: the *material* one (without the
    derived fields, a drifting field only present or absent, None or not) and the
    *loud* one (without the silent fields). Both are compared in one walk of the patch
    against ``previous``, building neither view and not the merged status: the loop
    asks this of every stack every tick.
    """
    change = _change(patch, previous or {})
    if change & _MATERIAL:
        return True
    # A count of failed reads grows every tick while a source is down; on its
    # own it is not worth a write (it rides along with the next one).
    return bool(change & _LOUD) and since_last >= refresh


# What differs between the merged status and the previous one, as bits: in the loud
# view, in the material view.
_LOUD, _MATERIAL = 1, 2
_ABSENT = object()


def _change(patch: Manifest, previous: Manifest) -> int:
    """The views in which ``previous`` merged with ``patch`` differs from ``previous``."""
    change = 0
    for key, value in patch.items():
        before = previous.get(key, _ABSENT)
        if value is None:
            if before is not _ABSENT:
                change |= _changed(key, before, _ABSENT)
        elif isinstance(value, dict) and isinstance(before, dict):
            change |= _change(value, before) & _views(key)
        elif isinstance(value, dict):
            change |= _changed(key, before, _merged({}, value))
        elif before is _ABSENT or before != value:
            change |= _changed(key, before, value)
        if change == _LOUD | _MATERIAL:
            break
    return change


def _views(key: str) -> int:
    """The views field ``key`` is in: the loud view leaves the silent fields out whole, the
    material view the derived ones."""
    return (0 if key in _SILENT else _LOUD) | (0 if key in _DERIVED else _MATERIAL)


def _changed(key: str, before: Any, after: Any) -> int:
    """The views in which field ``key`` differs between ``before`` and ``after`` (unequal,
    not both dicts; :data:`_ABSENT` where the field is not there)."""
    if key in _DRIFTING and _presence(before) == _presence(after):
        return _views(key) & _LOUD
    return _views(key)


def _presence(value: Any) -> object:
    """A drifting field in the material view: whether it is None (a dict is walked into,
    so it is a view of its own; an absent field is none)."""
    if value is _ABSENT or isinstance(value, dict):
        return object()
    return value is not None


def _merged(previous: Manifest, patch: Manifest) -> Manifest:
    """What a JSON merge patch makes of ``previous`` (None deletes a key)."""
    out = dict(previous)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        elif isinstance(value, dict):
            out[key] = _merged({}, value)
        else:
            out[key] = value
    return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
