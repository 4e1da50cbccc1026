"""Whether this operator replica leads, read from kopf's peering object.

With standby replicas (kopf peering), kopf freezes the handlers of every
replica but the one with the highest priority, but it does not stop our
autoscaling loop. The loop asks :func:`leads` each tick and stays idle on a
standby, so two replicas never scale the same Deployments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def _alive_priorities(peers: Mapping[str, Any], now: dt.datetime) -> list[int]:
    out = []
    for info in peers.values():
        if not isinstance(info, Mapping):
            continue
        try:
            seen = dt.datetime.fromisoformat(str(info["lastseen"]))
            lifetime = dt.timedelta(seconds=int(info.get("lifetime", 60)))
            priority = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=dt.UTC)
        if seen + lifetime >= now:
            out.append(priority)
    return out


def leads(peers: Mapping[str, Any] | None, *, own_priority: int, now: dt.datetime) -> bool:
    """Return True if a replica of ``own_priority`` leads among the live ``peers``.

    ``peers`` is the ``status`` of kopf's peering object (peer id -> priority,
    lastseen, lifetime). Like kopf, a replica leads only when no live peer has
    a higher priority and none other shares its own; with no peers recorded
    (not yet announced) it leads.
    """
    alive = _alive_priorities(peers or {}, now)
    if any(p > own_priority for p in alive):
        return False
    return alive.count(own_priority) <= 1
