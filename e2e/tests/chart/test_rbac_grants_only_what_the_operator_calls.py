"""The rendered ClusterRole and Roles grant what the operator calls, and nothing else.

No wildcards, no verb the code does not use (the operator never deletes:
children go by owner-reference garbage collection), and nothing it needs is
missing. ``OPERATOR_CALLS`` is the list of API calls of the operator and kopf;
change it together with the code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHART = Path(__file__).resolve().parents[3] / "charts" / "retention-operator"
NAMESPACED_VALUES = CHART / "ci" / "namespaced-values.yaml"

Manifest = dict[str, Any]
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def _calls(group: str, resources: list[str], verbs: list[str]) -> set[Grant]:
    return {(group, r, v) for r in resources for v in verbs}


# retention_operator.kube.cache.WATCHED_KINDS are listed and watched, besides applied.
CHILD_VERBS = ["get", "list", "watch", "create", "patch"]
# What the operator calls in the namespaces it serves.
NAMESPACED_CALLS: set[Grant] = (
    # kopf watches stacks and keeps its progress in their annotations.
    _calls("retention.dev", ["retentionstacks"], ["get", "list", "watch", "patch"])
    | _calls("retention.dev", ["retentionstacks/status"], ["get", "patch"])
    # Owner references with blockOwnerDeletion.
    | _calls("retention.dev", ["retentionstacks/finalizers"], ["update"])
    # Server-side apply (PATCH), create when absent; list and watch for the child cache.
    | _calls("apps", ["deployments", "statefulsets"], CHILD_VERBS)
    | _calls("", ["services", "configmaps"], CHILD_VERBS)
    | _calls("", ["secrets"], ["get", "create", "patch"])
    # Redis node addresses.
    | _calls("", ["pods"], ["list"])
    | _calls("", ["events"], ["create"])
    | _calls("policy", ["poddisruptionbudgets"], CHILD_VERBS)
    | _calls("networking.k8s.io", ["networkpolicies"], CHILD_VERBS)
    # Each stack's PodMonitor, when Prometheus Operator's CRDs are installed (not cached).
    | _calls("monitoring.coreos.com", ["podmonitors"], ["get", "create", "patch"])
)
# kopf discovers the resources it serves through the CRDs.
DISCOVERY_CALLS = _calls("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"])
PEERING_VERBS = ["get", "list", "watch", "patch"]
CLUSTER_PEERING_CALLS = _calls("kopf.dev", ["clusterkopfpeerings"], PEERING_VERBS)
NAMESPACED_PEERING_CALLS = _calls("kopf.dev", ["kopfpeerings"], PEERING_VERBS)

# Verbs that no rule of this chart may ever hold.
FORBIDDEN_VERBS = {"delete", "deletecollection", "escalate", "bind", "impersonate", "*"}


def _grants(role: Manifest) -> set[Grant]:
    """Expand a Role or ClusterRole into (group, resource, verb), failing on wildcards."""
    out: set[Grant] = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule, f"{role['metadata']['name']}: nonResourceURLs"
        assert "resourceNames" not in rule or rule["resourceNames"], "empty resourceNames"
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field} of {role['metadata']['name']}"
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), f"{rule} holds a forbidden verb"
        for group in rule["apiGroups"]:
            out |= _calls(group, rule["resources"], rule["verbs"])
    return out


def _roles(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


@pytest.mark.parametrize(
    ("sets", "peering"), [([], set()), (["peering.enabled=true"], CLUSTER_PEERING_CALLS)]
)
def test_cluster_wide_role_grants_exactly_the_operator_calls(
    render: Callable[..., list[Manifest]], sets: list[str], peering: set[Grant]
) -> None:
    manifests = render(sets=sets)
    [role] = _roles(manifests, "ClusterRole")
    assert not _roles(manifests, "Role")
    granted = _grants(role)
    wanted = NAMESPACED_CALLS | DISCOVERY_CALLS | peering
    assert granted - wanted == set(), "granted but never called"
    assert wanted - granted == set(), "called but not granted"
    [binding] = _roles(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    [subject] = binding["subjects"]
    [account] = _roles(manifests, "ServiceAccount")
    assert subject["name"] == account["metadata"]["name"]
    assert subject["namespace"] == "retention-system"


def test_watch_namespaces_gives_a_role_per_namespace_and_a_discovery_cluster_role(
    render: Callable[..., list[Manifest]],
) -> None:
    manifests = render([NAMESPACED_VALUES])
    [cluster_role] = _roles(manifests, "ClusterRole")
    assert _grants(cluster_role) == DISCOVERY_CALLS
    roles = _roles(manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert _grants(role) == NAMESPACED_CALLS | NAMESPACED_PEERING_CALLS
    bindings = _roles(manifests, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[0]["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == "retention-system"
    [workload] = _roles(manifests, "StatefulSet")
    env = {
        e["name"]: e.get("value")
        for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["RETENTION_WATCH_NAMESPACES"] == "team-a,team-b"


def test_rbac_create_false_renders_no_rbac(render: Callable[..., list[Manifest]]) -> None:
    kinds = {m["kind"] for m in render(sets=["rbac.create=false"])}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
