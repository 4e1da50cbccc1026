"""kstatus's verdict on a custom resource, as Flux and Helm 4's ``--wait`` reach it.

A pure port of the generic rules of sigs.k8s.io/cli-utils ``pkg/kstatus/status``
for a kind with no rules of its own (every custom resource): the chart tests
check the stack status fixtures against it, and cluster tests can check the
objects the operator really writes. Returns a :class:`Result` for any mapping;
missing fields count as absent, never as errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """kstatus's statuses that a custom resource can reach through these rules."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"


@dataclass(frozen=True)
class Result:
    """A status and the message kstatus would show with it."""

    status: Status
    message: str


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = obj.get("status") or {}
    return [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]


def compute(obj: Mapping[str, Any]) -> Result:
    """Return kstatus's status of ``obj``.

    In order: a deletionTimestamp means Terminating; an observedGeneration that
    differs from metadata.generation means InProgress; the first condition
    that is Reconciling=True (InProgress) or Stalled=True (Failed) decides;
    then Ready: True is Current, anything else InProgress. With none of these
    the object is Current, which is why an operator must write Ready on its
    first visit.
    """
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Result(Status.TERMINATING, "Resource scheduled for deletion")
    generation = meta.get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        kind = obj.get("kind", "Resource")
        return Result(
            Status.IN_PROGRESS,
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    conditions = _conditions(obj)
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return Result(Status.IN_PROGRESS, str(cond.get("message", "")))
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return Result(Status.FAILED, str(cond.get("message", "")))
    for cond in conditions:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return Result(Status.CURRENT, str(cond.get("message", "")))
            return Result(Status.IN_PROGRESS, str(cond.get("message", "")))
    return Result(Status.CURRENT, "Resource is current")
