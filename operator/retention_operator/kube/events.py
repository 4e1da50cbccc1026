"""Kubernetes Events about a RetentionStack, posted through the kube client.

Reasons are CamelCase; type is Normal or Warning. Messages are built by the
callers from names and numbers, never from Secret data. A failure to post an
Event is logged and swallowed: an Event is a report, not part of the work.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from retention_operator import names
from retention_operator.kube.client import KubeClient, KubeError

logger = logging.getLogger(__name__)
EventType = Literal["Normal", "Warning"]
COMPONENT = "retention-operator"


async def post(
    kube: KubeClient,
    *,
    namespace: str,
    name: str,
    uid: str,
    type_: EventType,
    reason: str,
    message: str,
) -> None:
    """Post one Event about the stack ``namespace/name``; never raises for API errors."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await kube.create(event)
    except KubeError as exc:
        logger.warning("could not post event %s for %s/%s: %s", reason, namespace, name, exc)
