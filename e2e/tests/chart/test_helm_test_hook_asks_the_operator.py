"""The `helm test` hook: a restricted pod that asks the operator's liveness endpoint.

Here KWOK plays the nodes, so the hook's command, taken from the rendered hook,
runs in a process standing for the pod, pointed at the session's real operator;
the rendering is checked for what `helm test` and Pod Security need. `helm test`
itself runs the pod on the real node in
``e2e/tests/node/test_helm_test_passes_against_the_demos_operator.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from harness.operator import OperatorProcess

from .conftest import Render

Manifest = dict[str, Any]


def _hook(render: Render) -> Manifest:
    [pod] = [m for m in render() if m["kind"] == "Pod"]
    return pod


def test_the_hook_is_a_test_pod_that_asks_the_operators_service(render: Render) -> None:
    manifests = render()
    pod = _hook(render)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    [service] = [m for m in manifests if m["kind"] == "Service"]
    [container] = pod["spec"]["containers"]
    url = next(e["value"] for e in container["env"] if e["name"] == "RETENTION_TEST_URL")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "healthz")
    assert url == f"http://{name}.{namespace}.svc:{port}/healthz"
    # The test pod is not one of the Service's backends.
    labels = pod["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


def test_the_hook_pod_meets_pod_security_restricted(render: Render) -> None:
    spec = _hook(render)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "volumes" not in spec


def test_tests_enabled_false_renders_no_hook(render: Render) -> None:
    assert not [m for m in render(sets=["tests.enabled=false"]) if m["kind"] == "Pod"]


@pytest.mark.e2e
def test_the_hook_command_passes_against_the_real_operator(
    render: Render, operator: OperatorProcess
) -> None:
    [container] = _hook(render)["spec"]["containers"]
    assert container["command"][:2] == ["python", "-c"]
    out = subprocess.run(
        [sys.executable, "-c", container["command"][2]],
        env={"RETENTION_TEST_URL": f"http://127.0.0.1:{operator.health_port}/healthz"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(": 200")
