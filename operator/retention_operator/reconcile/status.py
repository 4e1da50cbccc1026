"""Status of a stack from what its children report: pure functions.

Conditions follow Kubernetes conventions and kstatus: ``Ready``,
``Reconciling`` and ``Stalled``, each with a CamelCase reason, a message, and
a ``lastTransitionTime`` that moves only when the status value changes. The
caller writes the result only when it differs from the stored status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from retention_operator import names

Manifest = dict[str, Any]

REASON_READY = "Ready"
REASON_PROGRESSING = "Progressing"
REASON_PAUSED = "Paused"
REASON_STALLED = "Stalled"
REASON_RECONCILED = "Reconciled"
#: Slots of the managed Redis Cluster move with their keys (a change of shards).
REASON_RESHARDING = "Resharding"


@dataclass(frozen=True)
class ComponentHealth:
    """Desired and ready replicas of one component; ``message`` says what is not ready.

    ``reason``: the CamelCase reason of what it waits for, when it is more
    telling than ``Progressing`` (``Resharding``); only read with a message.
    ``held``: a healthy component with fewer ready replicas than desired
    says why it still counts as ready (:mod:`.readiness_hold`).
    """

    desired: int | None
    ready: int | None
    message: str | None = None
    reason: str | None = None
    held: str | None = None

    @property
    def healthy(self) -> bool:
        return self.message is None

    def to_status(self) -> Manifest:
        out: Manifest = {"desiredReplicas": self.desired, "readyReplicas": self.ready}
        out["message"] = self.message or self.held or ""
        return out


@dataclass(frozen=True)
class Problem:
    """Why a stack cannot progress without someone acting (sets Stalled=True)."""

    reason: str
    message: str


def workload_health(live: Manifest | None, *, what: str) -> ComponentHealth:
    """Health of a Deployment or StatefulSet; an absent object is not ready."""
    if live is None:
        return ComponentHealth(None, None, f"{what} does not exist yet")
    desired = int(live.get("spec", {}).get("replicas", 1))
    status = live.get("status", {})
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    generation = live.get("metadata", {}).get("generation")
    if status.get("observedGeneration") != generation:
        return ComponentHealth(desired, ready, f"{what}: change not yet observed by its controller")
    if ready < desired:
        return ComponentHealth(desired, ready, f"{what}: {ready}/{desired} replicas ready")
    if updated < desired:
        return ComponentHealth(desired, ready, f"{what}: rolling out, {updated}/{desired} updated")
    return ComponentHealth(desired, ready)


def _condition(
    previous: dict[str, Manifest],
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> Manifest:
    old = previous.get(type_)
    moved = old is None or old.get("status") != status
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now if moved or old is None else old.get("lastTransitionTime", now),
        "observedGeneration": generation,
    }


def conditions(
    *,
    previous: list[Manifest],
    generation: int | None,
    components: dict[str, ComponentHealth],
    problem: Problem | None,
    paused: bool,
    now: str,
) -> list[Manifest]:
    """Return the Ready, Reconciling and Stalled conditions for the observed state."""
    prev = {c.get("type", ""): c for c in previous}
    waiting = [h.message for h in components.values() if h.message]
    if problem is not None:
        ready = ("False", problem.reason, problem.message)
        reconciling = ("False", REASON_STALLED, "waiting for the problem to be fixed")
        stalled = ("True", problem.reason, problem.message)
    elif paused:
        # Paused reports the children's real readiness: Ready True only while
        # they are ready, so kstatus (Flux) calls a paused stack Current exactly
        # then, and InProgress, with what waits, otherwise.
        left = "spec.paused is true: children are left as they are"
        state, message = ("False", "; ".join([left, *waiting])) if waiting else ("True", left)
        ready = (state, REASON_PAUSED, message)
        reconciling = ("False", REASON_PAUSED, "spec.paused is true")
        stalled = ("False", REASON_PAUSED, "")
    elif waiting:
        # The first component with a reason of its own names the work (Resharding).
        reasons = [h.reason for h in components.values() if h.message and h.reason]
        reason = reasons[0] if reasons else REASON_PROGRESSING
        ready = ("False", reason, "; ".join(waiting))
        reconciling = ("True", reason, "; ".join(waiting))
        stalled = ("False", reason, "")
    else:
        held = [h.held for h in components.values() if h.held]
        ready = ("True", REASON_READY, "; ".join(["all components are ready", *held]))
        reconciling = ("False", REASON_RECONCILED, "")
        stalled = ("False", REASON_RECONCILED, "")
    out = []
    for type_, (status, reason, message) in (
        (names.CONDITION_READY, ready),
        (names.CONDITION_RECONCILING, reconciling),
        (names.CONDITION_STALLED, stalled),
    ):
        out.append(
            _condition(
                prev,
                type_=type_,
                status=status,
                reason=reason,
                message=message,
                generation=generation,
                now=now,
            )
        )
    return out


def status_patch(
    *,
    previous: Manifest,
    generation: int | None,
    components: dict[str, ComponentHealth],
    problem: Problem | None,
    paused: bool,
    redis: Manifest | None = None,
    now: str | None = None,
) -> Manifest:
    """Return the status fields the reconciler owns (not ``autoscaling``, which the loop owns).

    ``redis``: the managed cluster's block (:mod:`.redis_status`); None
    leaves the stored one as it is (no node answered, or no managed cluster).
    """
    now = now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = components.get(names.COMPONENT_API)
    workers = components.get(names.COMPONENT_WORKERS)
    patch: Manifest = _without_none(
        {
            "observedGeneration": generation,
            "conditions": conditions(
                previous=list(previous.get("conditions", [])),
                generation=generation,
                components=components,
                problem=problem,
                paused=paused,
                now=now,
            ),
            "components": {name: health.to_status() for name, health in components.items()},
            "apiReplicas": api.ready if api else None,
            "workerReplicas": workers.ready if workers else None,
            "redis": redis,
        }
    )
    return patch


def _without_none(value: Any) -> Any:
    """Drop None values at every depth.

    In a merge patch a null deletes the field, so the stored status would never
    equal the patch and every reconcile would write again.
    """
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def needs_write(current: Manifest, patch: Manifest) -> bool:
    """Return True if writing ``patch`` would change the stored status."""
    return any(current.get(key) != value for key, value in patch.items())
