"""The real node's pods reach the cluster's ranges and the host's veth address, nothing else.

A connection from a pod to an address outside the pod, service and veth
ranges fails in the pod at once ("network unreachable"); the node's network
namespace has no default route, and the harness refuses one that has.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from harness.fixtures_node import DemoRuns
from harness.node import network

pytestmark = pytest.mark.node
# Run in an API pod (the workloads image has Python): connect, report errno and seconds.
_PROBE = """
import errno, socket, sys, time
began = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected", time.monotonic() - began)
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc.errno), time.monotonic() - began)
"""


def _probe(demo_runs: DemoRuns, host: str, port: int) -> tuple[str, float]:
    cp = demo_runs.current.cp
    pod = cp.kubectl(
        "get", "pods", "-n", "demo", "-l", "app.kubernetes.io/component=api", "-o", "name"
    ).split()[0]
    out = cp.kubectl("exec", "-n", "demo", pod, "--", "python", "-c", _PROBE, host, str(port))
    outcome, seconds = out.split()
    return outcome, float(seconds)


@pytest.mark.parametrize("address", ["192.0.2.1", "8.8.8.8", "1.1.1.1", "172.16.0.1"])
def test_a_connection_out_of_the_cluster_ranges_fails_at_once(
    demo_runs: DemoRuns, address: str
) -> None:
    outcome, seconds = _probe(demo_runs, address, 443)
    assert outcome == "ENETUNREACH", (address, outcome)
    assert seconds < 0.5


def test_the_host_services_are_reached_through_the_veth(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    assert current.cp.node is not None
    outcome, _ = _probe(demo_runs, current.cp.node.net.host_ip, current.postgres.port)
    assert outcome == "connected"


def test_the_nodes_namespace_has_no_default_route(demo_runs: DemoRuns) -> None:
    node = demo_runs.current.cp.node
    assert node is not None
    routes = network.routes_inside(node.net.netns)
    assert not [r for r in routes if r.get("dst") == "default"], routes


def test_a_namespace_with_a_default_route_is_refused() -> None:
    name = f"rs-probe-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # A veth pair inside the scratch namespace stands for any way out.
        for argv in (
            ["link", "add", "out0", "type", "veth", "peer", "name", "out1"],
            ["link", "set", "out0", "up"],
            ["route", "add", "default", "dev", "out0"],
        ):
            subprocess.run(["ip", "-n", name, *argv], check=True)
        with pytest.raises(network.NetworkError, match="default route"):
            network.check_isolated(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
