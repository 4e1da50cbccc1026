"""Standby replicas through kopf peering: stable ordinals, so no two pods share a priority.

kopf freezes every replica when two share a priority. The chart runs peering
replicas as a StatefulSet and tells the operator to take its priority as
RETENTION_PEERING_PRIORITY minus the ordinal at the end of RETENTION_POD_NAME.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "retention-operator"
FULL = CHART / "ci" / "full-values.yaml"

Manifest = dict[str, Any]


def _priority(base: int, pod_name: str) -> int:
    """The rule the operator applies (settings): base minus the StatefulSet ordinal."""
    return base - int(pod_name.rsplit("-", 1)[1])


def test_peering_runs_a_statefulset_with_one_priority_per_ordinal(
    render: Callable[..., list[Manifest]],
) -> None:
    manifests = render([FULL], monitoring=True)
    assert not [m for m in manifests if m["kind"] == "Deployment"]
    [sts] = [m for m in manifests if m["kind"] == "StatefulSet"]
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    [service] = [m for m in manifests if m["kind"] == "Service"]
    assert spec["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["RETENTION_PEERING_PRIORITY_FROM_POD_NAME"]["value"] == "true"
    assert env["RETENTION_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    base = int(env["RETENTION_PEERING_PRIORITY"]["value"])
    pods = [f"{sts['metadata']['name']}-{i}" for i in range(spec["replicas"])]
    priorities = [_priority(base, pod) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert priorities[0] == max(priorities), "pod 0 leads"
    [peering] = [m for m in manifests if m["kind"] == "ClusterKopfPeering"]
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert env["RETENTION_PEERING_NAME"]["value"] == peering["metadata"]["name"]


def test_namespaced_peering_keeps_a_kopfpeering_in_each_namespace(
    render: Callable[..., list[Manifest]],
) -> None:
    manifests = render([CHART / "ci" / "namespaced-values.yaml"])
    peerings = [m for m in manifests if m["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not [m for m in manifests if m["kind"] == "ClusterKopfPeering"]


def test_kopf_peering_crds_ship_in_the_charts_crds_folder() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()))
    assert {d["metadata"]["name"] for d in docs} == {
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    for doc in docs:
        schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
