"""The operator from the chart, in a namespace that enforces Pod Security ``restricted``.

The demo installs the chart into ``retention-system`` and the stack into
``demo``; both namespaces enforce ``restricted``, so every pod there was
admitted under it. The operator runs as the chart's ServiceAccount from the
project's own image.
"""

from __future__ import annotations

import json

import pytest

from harness import demo
from harness.fixtures_node import DemoRuns

pytestmark = pytest.mark.node
ENFORCE = "pod-security.kubernetes.io/enforce"


def _json(demo_runs: DemoRuns, *args: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(demo_runs.current.cp.kubectl(*args, "-o", "json"))
    return data


def test_both_namespaces_enforce_restricted_and_their_pods_run(demo_runs: DemoRuns) -> None:
    for namespace in (demo.OPERATOR_NAMESPACE, demo.NAMESPACE):
        ns = _json(demo_runs, "get", "namespace", namespace)
        assert ns["metadata"]["labels"][ENFORCE] == "restricted"  # type: ignore[index]
        pods = _json(demo_runs, "get", "pods", "-n", namespace)["items"]
        assert pods, namespace
        for pod in pods:  # type: ignore[attr-defined]
            assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        # The API server re-checks every running pod against the level asked for.
        relabel = demo_runs.current.cp.kubectl_run(
            "label", "--dry-run=server", "--overwrite", "namespace", namespace,
            f"{ENFORCE}=restricted",
        )  # fmt: skip
        assert relabel.returncode == 0, relabel.stderr
        assert "violate" not in relabel.stderr, relabel.stderr


def test_the_operator_runs_from_its_image_as_the_charts_service_account(
    demo_runs: DemoRuns,
) -> None:
    pods = _json(
        demo_runs, "get", "pods", "-n", demo.OPERATOR_NAMESPACE,
        "-l", "app.kubernetes.io/name=retention-operator",
    )["items"]  # fmt: skip
    assert len(pods) == 1  # type: ignore[arg-type]
    pod = pods[0]  # type: ignore[index]
    assert pod["spec"]["serviceAccountName"] == demo.RELEASE
    assert pod["spec"]["containers"][0]["image"] == demo_runs.current.refs["operator"]
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
