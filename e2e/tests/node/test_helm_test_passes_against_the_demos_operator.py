"""``helm test`` of the demo's release passes: its hook pod runs on the real node and the
operator answers.

The hook (``templates/tests/operator-test-pod.yaml``) runs on the operator's own
image under the chart's restricted contexts, on the nodes the operator may use
(the demo's nodeSelector puts both on the real node), and asks the operator's
Service for its liveness endpoint. helm waits for the pod to succeed, then
deletes it (``hook-succeeded``).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import demo
from harness.fixtures_node import DemoRuns
from harness.procs import wait_until

pytestmark = pytest.mark.node


def test_helm_test_runs_its_pod_to_success(demo_runs: DemoRuns) -> None:
    cp = demo_runs.current.cp
    argv = [str(cp.bin_dir / "helm"), "test", demo.RELEASE, "--namespace"]
    argv += [demo.OPERATOR_NAMESPACE, "--kubeconfig", str(cp.kubeconfig), "--timeout", "120s"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=150, check=False)
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Phase:\s+Succeeded", done.stdout), done.stdout

    # hook-succeeded: helm deletes the pod once it passed (the API server may take a moment).
    def gone() -> bool:
        left = cp.kubectl(
            "get", "pods", "-n", demo.OPERATOR_NAMESPACE, "-l",
            "app.kubernetes.io/component=test", "-o", "name",
        )  # fmt: skip
        return left.strip() == ""

    wait_until(gone, what="the test pod deleted", timeout=60)
