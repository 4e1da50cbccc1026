"""Whether this operator replica leads, read from kopf's peering object.

With standby replicas (kopf peering), kopf freezes the handlers of every
replica but the one with the highest priority, but it does not stop what
runs outside its handlers: our autoscaling and read pool loops, and the
settles the children's cache starts. Each asks :meth:`Leadership.leads`
first and does nothing on a standby, so two replicas never write the same
objects.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from retention_operator.kube import KubeClient, KubeError
from retention_operator.settings import Settings

logger = logging.getLogger(__name__)


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


class Leadership:
    """This replica's answer to "do I lead?", from the peering object its settings name.

    Always True without peering (one replica). A failed read counts as no: a
    replica that cannot read the peering object cannot know that it leads.
    An answer is reused for ``ttl`` seconds (monotonic), so that a burst of
    child events costs one read, not one each.
    """

    def __init__(
        self,
        kube: KubeClient,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = 0.0,
    ) -> None:
        self._kube, self._settings, self._clock, self._ttl = kube, settings, clock, ttl
        self._answer: tuple[bool, float] | None = None

    async def leads(self) -> bool:
        """Whether this replica leads now (see the class docstring)."""
        name = self._settings.peering_name
        if name is None:
            return True
        if self._answer is not None and time.monotonic() - self._answer[1] < self._ttl:
            return self._answer[0]
        namespaces = self._settings.namespaces
        try:
            if namespaces:
                peering = await self._kube.get("kopf.dev/v1", "KopfPeering", namespaces[0], name)
            else:
                peering = await self._kube.get("kopf.dev/v1", "ClusterKopfPeering", None, name)
        except (KubeError, httpx.HTTPError) as exc:
            logger.warning("cannot read peering %s, acting as a standby: %s", name, exc)
            return False
        answer = leads(
            (peering or {}).get("status"),
            own_priority=self._settings.peering_priority,
            now=dt.datetime.fromtimestamp(self._clock(), dt.UTC),
        )
        self._answer = (answer, time.monotonic())
        return answer
