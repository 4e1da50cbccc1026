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
    """
    previous = previous or {}
    merged = _merged(previous, patch)
    if _material(merged) != _material(previous):
        return True
    # A count of failed reads grows every tick while a source is down; on its
    # own it is not worth a write (it rides along with the next one).
    return _without(merged, _SILENT) != _without(previous, _SILENT) and since_last >= refresh


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


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return value


def _material(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _material(v, k) for k, v in value.items() if k not in _DERIVED}
    if key in _DRIFTING:
        return value is not None
    return value


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
