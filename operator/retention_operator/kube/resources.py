"""URL paths of the kinds the operator reads and writes.

Only the kinds listed here can be used; an unknown kind is a programming
error and raises KeyError at once rather than guessing a plural.
"""

from __future__ import annotations

from dataclasses import dataclass

from retention_operator import names


@dataclass(frozen=True)
class Resource:
    """How one kind appears in the API: its group-version path, plural, scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def base(self) -> str:
        if "/" in self.api_version:
            return f"/apis/{self.api_version}"
        return f"/api/{self.api_version}"

    def collection(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.base()}/namespaces/{namespace}/{self.plural}"
        return f"{self.base()}/{self.plural}"

    def item(self, namespace: str | None, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


_RESOURCES = [
    Resource("v1", "ConfigMap", "configmaps"),
    Resource("v1", "Secret", "secrets"),
    Resource("v1", "Service", "services"),
    Resource("v1", "Pod", "pods"),
    Resource("v1", "Event", "events"),
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Resource(names.API_VERSION, names.KIND, names.PLURAL),
    # Prometheus Operator's, applied only when the cluster serves it.
    Resource(names.MONITORING_API_VERSION, names.KIND_POD_MONITOR, "podmonitors"),
    # kopf's peering objects: read to know whether this replica leads.
    Resource("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False),
    Resource("kopf.dev/v1", "KopfPeering", "kopfpeerings"),
]
_BY_KEY = {(r.api_version, r.kind): r for r in _RESOURCES}


def resource(api_version: str, kind: str) -> Resource:
    """Return the Resource of ``apiVersion``/``kind``; KeyError if the operator does not use it."""
    return _BY_KEY[(api_version, kind)]
