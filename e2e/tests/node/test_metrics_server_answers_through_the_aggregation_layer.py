"""metrics-server, built from its Go module, answers metrics.k8s.io through the aggregation layer.

What the HPA's CPU target needs on a real cluster: the API server (with its
front-proxy flags) proxies ``/apis/metrics.k8s.io/v1beta1`` to metrics-server,
which runs as its ServiceAccount with upstream's RBAC, scrapes the real
node's kubelet and serves the node's CPU and memory. Not in ``make test``:
``make autoscalers-test`` builds metrics-server into the binary cache first
(tens of minutes cold on two busy cores) and runs the tests marked
``autoscalers``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import autoscalers
from harness.controlplane import start_control_plane
from harness.node.realnode import NODE_NAME
from harness.procs import wait_until

pytestmark = [pytest.mark.node, pytest.mark.autoscalers, pytest.mark.timeout(600)]


def test_node_metrics_come_from_the_kubelet_through_the_api_server(tmp_path: Path) -> None:
    bin_dir = autoscalers.build("metrics-server")
    cp = start_control_plane(tmp_path / "cluster", real_node=True)
    try:
        autoscalers.start_metrics_server(cp, bin_dir)
        group = json.loads(cp.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1"))
        assert group["groupVersion"] == "metrics.k8s.io/v1beta1"
        assert {r["name"] for r in group["resources"]} >= {"nodes", "pods"}

        path = f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE_NAME}"

        def scraped() -> bool:
            return cp.kubectl_run("get", "--raw", path).returncode == 0

        # The first scrape comes within one resolution (15 s) of the start.
        wait_until(scraped, what=f"metrics of {NODE_NAME}", timeout=90)
        usage = json.loads(cp.kubectl("get", "--raw", path))["usage"]
        assert usage["cpu"] and usage["memory"]
    finally:
        cp.stop()
