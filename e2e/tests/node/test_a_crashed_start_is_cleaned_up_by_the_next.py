"""A start of the cluster killed half-way (the harness SIGKILLed) is undone by the next start.

The harness records every process, the node's network namespace and its
cgroups as it makes them, so ``make cluster-up`` after a crash stops the
leftovers, starts afresh and ends with a Ready real node, and
``make cluster-down`` then leaves nothing behind. Runs beside the session's
demo cluster, so it also shows two real nodes side by side (two slots).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.controlplane import ControlPlane
from harness.node.network import NodeNetwork
from harness.node.realnode import leftovers

pytestmark = pytest.mark.node


def _harness(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip


def _kubelet_started(node_json: Path) -> bool:
    try:
        return "kubelet" in json.loads(node_json.read_text())["pids"]
    except (OSError, ValueError, KeyError):
        return False


def test_cluster_up_after_a_crash_starts_afresh_and_down_leaves_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "cluster"
    crashed = _harness("cluster-up", "--run-dir", str(run_dir))
    node_json = run_dir / "node" / "node.json"
    deadline = time.monotonic() + 180
    while not _kubelet_started(node_json):
        assert crashed.poll() is None, crashed.communicate()[0]
        assert time.monotonic() < deadline, "the first start never reached the kubelet"
        time.sleep(0.2)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=10)
    first_slot = json.loads(node_json.read_text())["slot"]

    again = _harness("cluster-up", "--run-dir", str(run_dir))
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    cp = ControlPlane.load(run_dir)
    assert cp is not None and cp.node is not None and cp.healthy()
    nodes = json.loads(cp.kubectl("get", "node", "real-node", "-o", "json"))
    ready = {c["type"]: c["status"] for c in nodes["status"]["conditions"]}["Ready"]
    assert ready == "True"
    net, root = cp.node.net, cp.node.root
    # The crashed start's namespace was taken down, so its slot could be reused.
    assert leftovers(NodeNetwork(first_slot), root) == [] or net.slot == first_slot

    down = _harness("cluster-down", "--run-dir", str(run_dir))
    out, _ = down.communicate(timeout=120)
    assert down.returncode == 0, out
    assert leftovers(net, root) == []
