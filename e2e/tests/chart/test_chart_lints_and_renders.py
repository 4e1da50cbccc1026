"""The chart lints clean and renders what the operator needs, with the default and full values."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "retention-operator"
FULL = CHART / "ci" / "full-values.yaml"
NAMESPACED = CHART / "ci" / "namespaced-values.yaml"

HelmRun = Callable[..., subprocess.CompletedProcess[str]]
Manifest = dict[str, Any]


def _kinds(manifests: list[Manifest]) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def _one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _env(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("values", [None, FULL, NAMESPACED], ids=["default", "full", "namespaced"])
def test_helm_lint_is_clean(helm_run: HelmRun, values: Path | None) -> None:
    args = ["lint", "--strict", "--kube-version", "1.34.0", str(CHART)]
    if values is not None:
        args += ["-f", str(values)]
    out = helm_run(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_default_values_render_a_standalone_operator(render: Callable[..., list[Manifest]]) -> None:
    manifests = render()
    assert _kinds(manifests) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Pod",
        "Service",
        "ServiceAccount",
    ]
    deployment = _one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # Two standalone operators must never overlap during a rollout.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/retention-dev/retention-operator:0.1.0"
    assert container["command"] == ["retention-operator"]
    env = _env(container)
    assert env["RETENTION_WATCH_NAMESPACES"] == ""
    assert env["RETENTION_LOG_FORMAT"] == "json"
    assert env["RETENTION_METRICS_PORT"] == "8080"
    assert env["RETENTION_HEALTH_PORT"] == "8081"
    assert "RETENTION_PEERING_NAME" not in env
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "healthz": 8081}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", [None, FULL], ids=["default", "full"])
def test_operator_pod_meets_pod_security_restricted(
    render: Callable[..., list[Manifest]], values: Path | None
) -> None:
    manifests = render([values] if values else [], monitoring=True)
    [workload] = [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in security
    # Only emptyDir volumes: restricted forbids hostPath, and the operator needs nothing else.
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])


def test_full_values_render_every_optional_part(render: Callable[..., list[Manifest]]) -> None:
    manifests = render([FULL], monitoring=True)
    assert _kinds(manifests) == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "Pod",
        "PodMonitor",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    ]
    statefulset = _one(manifests, "StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert _env(container)["RETENTION_PROMETHEUS_URL"].startswith("http://prometheus-operated")
    assert _env(container)["TZ"] == "UTC"
    crd = _one(manifests, "CustomResourceDefinition")
    assert "annotations" not in crd["metadata"], "crds.keep=false must drop the keep policy"
    monitor = _one(manifests, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"] == statefulset["spec"]["selector"]["matchLabels"]
    )
    dashboard = _one(manifests, "ConfigMap")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    shipped = json.loads(dashboard["data"]["retention-operator.json"])
    assert shipped == json.loads((CHART / "dashboards" / "retention-operator.json").read_text())


def test_monitoring_objects_wait_for_the_prometheus_operator_crds(
    render: Callable[..., list[Manifest]],
) -> None:
    # Asked for, but the cluster does not serve the kinds: nothing is rendered
    # (NOTES.txt says so; test_chart_notes_on_the_cluster.py reads it).
    manifests = render([FULL], monitoring=False)
    assert not [m for m in manifests if m["kind"] in ("PodMonitor", "PrometheusRule")]


def test_crds_install_false_leaves_the_crd_out(render: Callable[..., list[Manifest]]) -> None:
    manifests = render(sets=["crds.install=false"])
    assert "CustomResourceDefinition" not in _kinds(manifests)


def test_every_template_object_carries_the_chart_labels(
    render: Callable[..., list[Manifest]],
) -> None:
    for manifest in render([FULL], monitoring=True):
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "r", manifest["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", manifest["kind"]


def test_chart_yaml_pins_the_app_version_the_image_defaults_to() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"]
