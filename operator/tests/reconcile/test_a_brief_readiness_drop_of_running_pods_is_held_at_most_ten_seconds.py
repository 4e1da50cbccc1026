"""A readiness drop of pods that kept running their containers (a restarted kubelet) leaves the
stack Ready for under HOLD_SECONDS; anything else, or a drop that lasts, is reported.

The pod shapes are those a kubelet of Kubernetes 1.34 reports after its restart:
the same pod and containers, Running, with the Ready condition False since its
return (its new readiness worker starts at Failure until the first probe).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from retention_operator.reconcile import readiness_hold
from retention_operator.reconcile.readiness_hold import HOLD_SECONDS, held_until
from retention_operator.reconcile.status import ComponentHealth, status_patch

SINCE = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)  # The stack became Ready.
DROP = SINCE + dt.timedelta(minutes=10)  # The kubelet came back.


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _deployment(*, replicas: int = 2, ready: int = 0, updated: int | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "s-api", "namespace": "ns", "generation": 4},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "s-api"}}},
        "status": {
            "observedGeneration": 4,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
        },
    }


def _pod(
    name: str,
    *,
    ready: bool = False,
    created: dt.datetime = SINCE - dt.timedelta(minutes=1),
    started: dt.datetime = SINCE - dt.timedelta(seconds=30),
    changed: dt.datetime = DROP,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": _ts(created)}
    if deleting:
        meta["deletionTimestamp"] = _ts(DROP)
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": str(ready), "lastTransitionTime": _ts(changed)}
            ],
            "containerStatuses": [
                {
                    "name": "api",
                    "restartCount": 0,
                    "state": {"running": {"startedAt": _ts(started)}},
                }
            ],
        },
    }


def _at(seconds: float) -> dt.datetime:
    return DROP + dt.timedelta(seconds=seconds)


def test_pods_that_kept_their_containers_are_held_until_the_bound() -> None:
    pods = [_pod("a"), _pod("b")]
    until = held_until(_deployment(), pods, since=SINCE, now=_at(2))
    assert until == DROP + dt.timedelta(seconds=HOLD_SECONDS)


def test_a_drop_that_lasts_the_bound_is_reported() -> None:
    pods = [_pod("a"), _pod("b", ready=True)]
    assert (
        held_until(_deployment(ready=1), pods, since=SINCE, now=_at(HOLD_SECONDS - 1)) is not None
    )
    assert held_until(_deployment(ready=1), pods, since=SINCE, now=_at(HOLD_SECONDS)) is None


def test_pods_ready_again_before_their_workloads_count_are_held_from_the_recovery() -> None:
    """The pods are read after the workload: a drop of a second can be over in them while the
    workload's cached count still shows it (the node run saw drops of 0.01 to 0.7 s)."""
    back = DROP + dt.timedelta(seconds=1)
    pods = [_pod("a", ready=True, changed=back), _pod("b", ready=True, changed=SINCE)]
    until = held_until(_deployment(ready=1), pods, since=SINCE, now=_at(2))
    assert until == back + dt.timedelta(seconds=HOLD_SECONDS)
    assert held_until(_deployment(ready=1), pods, since=SINCE, now=_at(1 + HOLD_SECONDS)) is None
    # A count behind pods that have been ready for long is not this: it is reported.
    stale = [_pod("a", ready=True, changed=SINCE), _pod("b", ready=True, changed=SINCE)]
    assert held_until(_deployment(ready=1), stale, since=SINCE, now=_at(2)) is None


def test_a_replaced_pod_is_reported_at_once() -> None:
    pods = [_pod("a"), _pod("c", created=DROP, started=DROP, changed=DROP)]
    assert held_until(_deployment(), pods, since=SINCE, now=_at(1)) is None


def test_a_restarted_container_is_reported_at_once() -> None:
    pods = [_pod("a"), _pod("b", started=DROP + dt.timedelta(seconds=1))]
    assert held_until(_deployment(), pods, since=SINCE, now=_at(2)) is None


def test_a_pod_being_deleted_or_missing_is_reported_at_once() -> None:
    assert (
        held_until(_deployment(), [_pod("a"), _pod("b", deleting=True)], since=SINCE, now=_at(1))
        is None
    )
    assert held_until(_deployment(), [_pod("a")], since=SINCE, now=_at(1)) is None


def test_a_rollout_or_an_unobserved_spec_is_reported_at_once() -> None:
    pods = [_pod("a"), _pod("b")]
    assert held_until(_deployment(updated=1), pods, since=SINCE, now=_at(1)) is None
    unobserved = _deployment()
    unobserved["metadata"]["generation"] = 5
    assert held_until(unobserved, pods, since=SINCE, now=_at(1)) is None


def test_a_container_that_is_not_running_is_reported_at_once() -> None:
    stopped = _pod("b")
    stopped["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert held_until(_deployment(), [_pod("a"), stopped], since=SINCE, now=_at(1)) is None


def test_a_held_component_keeps_the_stack_ready_and_says_so() -> None:
    note = "Deployment s-api: 0/2 replicas ready, every pod still running ..."
    previous = {
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": _ts(SINCE)}
        ]
    }
    components = {"api": ComponentHealth(2, 0, held=note), "workers": ComponentHealth(1, 1)}
    patch = status_patch(
        previous=previous,
        generation=1,
        components=components,
        problem=None,
        paused=False,
        now=_ts(DROP),
    )
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", _ts(SINCE))
    assert note in ready["message"]
    assert patch["components"]["api"] == {"desiredReplicas": 2, "readyReplicas": 0, "message": note}
    assert patch["apiReplicas"] == 0  # The counts stay what the workload reports.


class _Pods:
    """A kube client that lists the given pods and counts the lists."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods, self.lists = pods, 0

    async def list(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        self.lists += 1
        return self.pods


async def test_hold_reads_pods_only_for_a_stack_that_was_ready() -> None:
    kube = _Pods([_pod("a"), _pod("b")])
    waiting = ComponentHealth(2, 0, "Deployment s-api: 0/2 replicas ready")

    async def hold(since: dt.datetime | None) -> tuple[ComponentHealth, float | None]:
        return await readiness_hold.hold(
            kube,  # type: ignore[arg-type]
            _deployment(),
            waiting,
            what="Deployment s-api",
            since=since,
            now=_at(1),
        )

    assert (*await hold(None), kube.lists) == (waiting, None, 0)
    held, left = await hold(SINCE)
    assert held.healthy and held.ready == 0 and left == HOLD_SECONDS - 1
    assert held.held is not None and "counted as ready until 12:10:10Z" in held.held
    assert kube.lists == 1


def test_ready_since_is_the_stored_ready_conditions_transition() -> None:
    ready = {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": _ts(SINCE)}]}
    assert readiness_hold.ready_since(ready) == SINCE
    not_ready = {
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": _ts(SINCE)}]
    }
    assert readiness_hold.ready_since(not_ready) is None
    assert readiness_hold.ready_since({}) is None


def test_a_terminating_pod_older_than_its_workload_is_not_one_of_its_pods() -> None:
    """A stack deleted and applied again: the new Deployment's selector still matches a
    worker of the old one that drains for its grace period. It is no pod of this workload,
    so it neither counts nor stops the hold; a pod of this workload being deleted does."""
    live = _deployment()
    live["metadata"]["creationTimestamp"] = _ts(SINCE - dt.timedelta(minutes=2))
    old = _pod("old", created=SINCE - dt.timedelta(minutes=5), deleting=True)
    pods = [_pod("a"), _pod("b")]
    assert held_until(live, [*pods, old], since=SINCE, now=_at(2)) is not None
    ours = _pod("c", created=SINCE - dt.timedelta(minutes=1), deleting=True)
    assert held_until(live, [pods[0], ours], since=SINCE, now=_at(2)) is None
    # Without the workload's creation time, every pod being deleted stops the hold.
    assert held_until(_deployment(), [*pods, old], since=SINCE, now=_at(2)) is None
