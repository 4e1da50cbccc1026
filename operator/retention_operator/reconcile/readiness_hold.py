"""A brief readiness drop of pods that never stopped: still counted ready, for a bounded time.

Why: a kubelet that restarts (Kubernetes 1.34, the version this project
builds) forgets its probe results. Its new readiness worker of each container
starts at ``Failure`` and first probes a random part of the probe's period
later (``pkg/kubelet/prober/worker.go``: ``initialValue``, and the sleep before
the first probe "if kubelet restarted"). Until then the kubelet reports the
container not ready, though it never stopped, and the pod's workload shows
fewer ready replicas for a few seconds. Kubernetes 1.35 keeps the previous
readiness instead (KEP-4781, gate ``ChangeContainerStatusOnKubeletRestart``).

The rule, owned here: a workload whose ready replicas dropped still counts as
ready (the component is *held*) while every one of these is true:

- the stack's stored Ready condition is True, since ``ready_since``;
- the workload's controller has observed its spec and every replica is
  updated (no rollout is under way);
- its pods are exactly the desired count, none being deleted, each created
  before ``ready_since``, in phase Running, and every container of each is
  running since before ``ready_since`` (so no pod was replaced, and no
  container restarted, since the stack became Ready); a pod being deleted that
  is older than the workload is left out (a leftover of an earlier workload of
  the same name: the stack deleted and applied again);
- every pod that is not ready went not ready (its Ready condition's
  ``lastTransitionTime``) less than :data:`HOLD_SECONDS` ago; or, when every
  pod is ready again, the last of them became ready less than
  :data:`HOLD_SECONDS` ago (the pods, read after the workload, are ahead of
  the workload's count, which lags them by its controller's next sync).

Anything else (a pod missing, replaced, restarted or deleted, a rollout, a
scale) is reported at once, and a drop that lasts is reported when it has
lasted :data:`HOLD_SECONDS`: a real outage of running pods is reported that
much later than their workload shows it, never hidden. Nothing else may
change when a hold ends, so the caller refreshes the status then (the
seconds :func:`hold` returns).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from retention_operator import names
from retention_operator.kube import KubeClient
from retention_operator.reconcile.status import ComponentHealth

Manifest = dict[str, Any]

HOLD_SECONDS = 10.0
"""The longest readiness drop of unchanged, running pods that is not reported.

Two readiness periods of the operator's probes (5 s): a restarted kubelet
probes each container within one period, and the second covers its status
reaching the API server on a busy node.
"""

RECHECK_MARGIN_SECONDS = 0.5
"""The status is refreshed this long after a hold ends (its end is a whole second)."""


def parse_time(value: object) -> dt.datetime | None:
    """An API timestamp (``2026-01-01T00:00:00Z``) as an aware datetime; None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def ready_since(status: Manifest) -> dt.datetime | None:
    """When the stored Ready condition became True; None if it is not True (nothing to hold)."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == names.CONDITION_READY and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime"))
    return None


def _pod_unchanged(pod: Manifest, since: dt.datetime) -> bool:
    """Whether the pod existed at ``since`` and every container of it runs since before then."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    created = parse_time(meta.get("creationTimestamp"))
    if meta.get("deletionTimestamp") or created is None or created >= since:
        return False
    containers = status.get("containerStatuses") or []
    if status.get("phase") != "Running" or not containers:
        return False
    for container in containers:
        started = parse_time(((container.get("state") or {}).get("running") or {}).get("startedAt"))
        if started is None or started >= since:
            return False
    return True


def _leftover(pod: Manifest, born: dt.datetime | None) -> bool:
    """Whether the pod is a leftover of an earlier workload of the same name, going away.

    A stack deleted and applied again gets new workloads whose selectors match the old
    ones' pods while those still terminate (a worker drains for its grace period): a pod
    being deleted that is older than the workload itself was never one of its pods.
    """
    meta = pod.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    if not meta.get("deletionTimestamp") or born is None or created is None:
        return False
    return created < born


def _ready_condition(pod: Manifest) -> tuple[bool, dt.datetime | None]:
    """(ready, since when): the pod's Ready condition; not ready, without a time, if absent."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = condition.get("status") == "True"
            return ready, parse_time(condition.get("lastTransitionTime"))
    return False, None


def _steady(live: Manifest) -> bool:
    """Whether the workload's controller has observed its spec and updated every replica."""
    spec, status = live.get("spec") or {}, live.get("status") or {}
    if status.get("observedGeneration") != (live.get("metadata") or {}).get("generation"):
        return False
    return int(status.get("updatedReplicas", 0) or 0) >= int(spec.get("replicas", 1))


def held_until(
    live: Manifest, pods: list[Manifest], *, since: dt.datetime, now: dt.datetime
) -> dt.datetime | None:
    """When the hold of this workload's drop ends, or None if the drop is not held (the rule).

    ``live``: the Deployment or StatefulSet; ``pods``: every pod its selector
    matches; ``since``: when the stack became Ready; ``now``: the wall clock.
    """
    born = parse_time((live.get("metadata") or {}).get("creationTimestamp"))
    pods = [pod for pod in pods if not _leftover(pod, born)]
    if not _steady(live) or len(pods) != int((live.get("spec") or {}).get("replicas", 1)):
        return None
    if not all(_pod_unchanged(pod, since) for pod in pods):
        return None
    dropped: list[dt.datetime] = []
    recovered: list[dt.datetime] = []
    for pod in pods:
        ready, when = _ready_condition(pod)
        if when is None:
            return None
        (recovered if ready else dropped).append(when)
    # Every pod ready again (the count has not seen it yet): from the last recovery.
    start = min(dropped) if dropped else max(recovered)
    until = start + dt.timedelta(seconds=HOLD_SECONDS)
    return until if now < until else None


def selector(live: Manifest) -> str | None:
    """The workload's pod selector as a label selector; None if it is not plain matchLabels."""
    match = (live.get("spec") or {}).get("selector") or {}
    labels = match.get("matchLabels") or {}
    if match.get("matchExpressions") or not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def hold(
    kube: KubeClient,
    live: Manifest | None,
    health: ComponentHealth,
    *,
    what: str,
    since: dt.datetime | None,
    now: dt.datetime,
) -> tuple[ComponentHealth, float | None]:
    """``health``, or the same counts held as ready under the rule; with seconds left of the hold.

    Reads the workload's pods only when there is something to hold (the
    stack was Ready and ``health`` is not); sends no writes. Returns
    ``(health, None)`` when the drop is not held.
    """
    if health.healthy or since is None or live is None or not _steady(live):
        return health, None
    labels = selector(live)
    if labels is None:
        return health, None
    meta = live.get("metadata") or {}
    pods = await kube.list("v1", "Pod", meta.get("namespace"), label_selector=labels)
    until = held_until(live, pods, since=since, now=now)
    if until is None:
        return health, None
    note = (
        f"{what}: {health.ready}/{health.desired} replicas ready, every pod still running the "
        f"containers it had when the stack became Ready; counted as ready until "
        f"{until.strftime('%H:%M:%SZ')}"
    )
    held = ComponentHealth(health.desired, health.ready, held=note)
    return held, (until - now).total_seconds()
